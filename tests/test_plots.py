"""``sweeper plot``: real sweeps on the session's Ray, plotted to PNG and HTML, logged to MLflow."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner
from mlflow.tracking import MlflowClient

from sweeper import plots
from sweeper.cli._plot import plot
from sweeper.errors import NotFoundError, SpecError, SweepError
from sweeper.execution._sweep import SweepResult, run
from sweeper.history import load
from sweeper.settings import load_settings
from sweeper.spec import parse_spec

ROOT = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

pytestmark = pytest.mark.usefixtures("ray_session")


def make_spec(search: dict[str, Any], parameters: dict[str, Any], **extra: Any):
    data = {
        "name": "plots",
        "framework": "python",
        "entrypoint": "tests/_code/trainables.py:steps",
        "search": {"metric": "score", "mode": "max", **search},
        "parameters": {**parameters, "sleep": 0.01},
        **extra,
    }
    return parse_spec(data, base_dir=ROOT)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A folder for the module's sweeps; the cwd too, so MLflow's artifacts land in it."""
    folder = tmp_path_factory.mktemp("plots")
    before = Path.cwd()
    os.chdir(folder)
    try:
        yield folder
    finally:
        os.chdir(before)


@pytest.fixture(scope="module")
def env(workdir: Path) -> dict[str, str]:
    return {
        "SWEEPER_MLFLOW_TRACKING_URI": f"sqlite:///{workdir / 'mlflow.db'}",
        "SWEEPER_RESULTS_DIR": str(workdir / "results"),
    }


@pytest.fixture(scope="module")
def sweep(ray_session, env: dict[str, str]) -> SweepResult:
    """8 Optuna trials over three dimensions with ASHA: some complete, some are stopped early.

    One trial at a time: ASHA then judges each trial against the same earlier ones every run.
    """
    spec = make_spec(
        {"method": "optuna", "sampler": "tpe", "trials": 8, "concurrency": 1, "seed": 0},
        {
            "x": {"uniform": [0.0, 10.0]},
            "lr": {"loguniform": [1.0e-4, 1.0e-1]},
            "opt": {"choice": ["adam", "sgd"]},
            "epochs": 6,
        },
        early_stopping={"method": "asha", "max_steps": 6, "reduction_factor": 2},
    )
    result = run(spec, load_settings(environ=env), echo=None)
    states = result.results["state"].value_counts()
    assert states["completed"] >= 2 and states["stopped"] >= 2, states
    return result


@pytest.fixture(scope="module")
def single_sweep(ray_session, env: dict[str, str]) -> SweepResult:
    spec = make_spec({"method": "random", "trials": 1, "seed": 1}, {"x": {"uniform": [0, 1]}})
    return run(spec, load_settings(environ=env), echo=None)


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 1000, path
    from PIL import Image

    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG" and min(image.size) >= 200, (path, image.size)


def assert_html(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert "<html" in text and "plotly" in text.lower(), path
    assert '<script src="https://cdn.plot.ly' not in text  # works offline
    if path.name == plots.PAGE_FILE:
        # Every plot, plotly.js inlined once: it shows in the MLflow UI's sandbox too.
        assert len(text) > 1_000_000 and text.count("Plotly.newPlot") == len(plots.PLOTS)
    else:
        # plotly.js once per folder, beside the pages, not a 4.6 MB copy in each of them.
        assert len(text) < 200_000 and 'src="plotly.min.js"' in text
        assert (path.parent / plots.PLOTLY_FILE).stat().st_size > 1_000_000


def plot_artifacts(result: SweepResult) -> set[str]:
    client = MlflowClient(result.tracking_uri)
    return {a.path for a in client.list_artifacts(result.parent_run_id, "plots")}


def test_plot_sweep_writes_every_plot_as_png_and_html_and_logs_them(sweep):
    lines: list[str] = []
    written = plots.plot_sweep(sweep.sweep_dir, echo=lines.append)
    out = sweep.sweep_dir / "plots"
    each = [out / f"{name}.{ext}" for name in plots.PLOTS for ext in ("png", "html")]
    assert written == [*each, out / "plots.html", out / "plotly.min.js"]
    for path in written[:-1]:
        assert_png(path) if path.suffix == ".png" else assert_html(path)
        assert f"wrote {path}" in lines
    assert not [line for line in lines if line.startswith("note:")]
    logged = {f"plots/{path.name}" for path in written if path.suffix == ".png"}
    assert plot_artifacts(sweep) == {*logged, "plots/plots.html"}
    assert f"MLflow run {sweep.parent_run_id}" in lines[-1] and "plots" in lines[-1]
    # Hovering a point of the history shows sweeper's name of the trial.
    best = sweep.best["trial"]
    assert f'"{best}"' in (out / "optimization_history.html").read_text(encoding="utf-8")


def test_learning_curves_have_one_line_per_trial_over_its_steps(sweep):
    import matplotlib.pyplot as plt
    from optuna.trial import TrialState

    data = plots._load(sweep.sweep_dir, None)
    figure, mpl_figure = plots._learning_curves(data)
    frame = sweep.results.set_index("trial")
    steps = {trial: list(range(1, n + 1)) for trial, n in frame["steps"].items()}
    assert len(figure.data) == len(frame) == 8
    best = sweep.best["trial"]
    for trace, (trial, row) in zip(figure.data, frame.iterrows(), strict=True):
        assert trace.name == f"{trial} ({row['state']})" + (", best" if trial == best else "")
        assert trace.line.width == (4 if trial == best else 1.5)  # the best drawn bold
        assert list(trace.x) == steps[trial]
        assert trace.y[-1] == pytest.approx(row["score"])  # the trial's final score
        assert trace.line.dash == ("dash" if row["state"] == "stopped" else "solid")
    lines = mpl_figure.axes[0].get_lines()
    assert [list(line.get_xdata()) for line in lines] == list(steps.values())
    assert len({line.get_color() for line in lines}) == len(lines)  # a colour each
    mpl_figure.canvas.draw()
    axes = mpl_figure.axes[0]
    legend = axes.get_legend().get_window_extent()
    assert legend.x0 >= axes.get_window_extent().x1  # beside the plot, not over the curves
    plt.close(mpl_figure)
    # Stopped trials are pruned in the study, with the steps they ran as intermediate values.
    trials = {t.user_attrs["trial"]: t for t in data.study.trials}
    for trial, row in frame.iterrows():
        state = TrialState.PRUNED if row["state"] == "stopped" else TrialState.COMPLETE
        assert trials[trial].state == state
        assert sorted(trials[trial].intermediate_values) == steps[trial]
        assert trials[trial].number == int(trial.split("-")[1]) - 1


def test_history_numbers_and_names_trials_as_sweeper_does(sweep):
    import matplotlib.pyplot as plt

    data = plots._load(sweep.sweep_dir, None)
    with plots._quiet():
        figure, mpl_figure = plots._history(data)
    plt.close(mpl_figure)
    completed = sweep.results[sweep.results["state"] == "completed"]
    (points,) = [trace for trace in figure.data if trace.mode == "markers" and trace.x]
    assert list(points.x) == [int(name.split("-")[1]) for name in completed["trial"]]
    assert list(points.text) == list(completed["trial"])
    assert list(points.y) == pytest.approx(list(completed["score"]))
    assert figure.layout.xaxis.tickformat == "d"  # whole trials on the axis
    ticks = mpl_figure.axes[0].xaxis.get_major_locator()()
    assert all(float(t).is_integer() for t in ticks)


def test_plots_go_to_another_folder(sweep, tmp_path):
    out = tmp_path / "elsewhere"
    written = plots.plot_sweep(sweep.sweep_dir, out, log_to_mlflow=False, echo=None)
    assert sorted(written) == sorted(out.iterdir()) and len(written) == 2 * len(plots.PLOTS) + 2


def test_one_completed_trial_writes_what_it_can_and_notes_the_rest(single_sweep):
    lines: list[str] = []
    written = plots.plot_sweep(single_sweep.sweep_dir, log_to_mlflow=False, echo=lines.append)
    assert [path.name for path in written] == [
        "optimization_history.png",
        "optimization_history.html",
        "learning_curves.png",
        "learning_curves.html",
        "plots.html",
        "plotly.min.js",
    ]
    notes = [line for line in lines if line.startswith("note:")]
    assert notes == [
        "note: parallel_coordinate skipped: needs at least 2 completed trials with score, got 1",
        "note: param_importances skipped: needs at least 2 completed trials with score, got 1",
    ]
    assert plot_artifacts(single_sweep) == set()  # log_to_mlflow=False


def test_cli_plots_a_sweep_by_id(sweep, env, tmp_path):
    out = tmp_path / "figures"
    result = CliRunner().invoke(plot, [sweep.sweep, "-o", str(out)], env=env)
    assert result.exit_code == 0, result.output
    files = sorted(out.iterdir())
    assert len(files) == 2 * len(plots.PLOTS) + 2
    for path in files:
        assert f"wrote {path}" in result.output
    assert f"MLflow run {sweep.parent_run_id}" in result.output
    assert "plots/" in result.output.splitlines()[-1]
    logged = {f"plots/{path.name}" for path in files if path.suffix == ".png"}
    assert logged | {"plots/plots.html"} == plot_artifacts(sweep)


def test_cli_no_mlflow_and_a_sweep_that_does_not_exist(single_sweep, env):
    result = CliRunner().invoke(plot, [str(single_sweep.sweep_dir), "--no-mlflow"], env=env)
    assert result.exit_code == 0, result.output
    assert "note: param_importances skipped" in result.output
    assert "MLflow run" not in result.output
    assert plot_artifacts(single_sweep) == set()
    result = CliRunner().invoke(plot, ["no-such-sweep"], env=env)
    assert isinstance(result.exception, NotFoundError)
    assert "sweep must be a sweep folder, id, id prefix or spec name" in str(result.exception)


def test_plots_read_the_sweep_as_sweeper_status_does(sweep):
    data = plots._load(sweep.sweep_dir, None)
    pd.testing.assert_frame_equal(data.frame, load(sweep.sweep_dir).results)
    assert data.frame["mlflow_run_id"].notna().all()  # results.csv's, as status and show see them
    assert list(data.spec.dimensions) == ["x", "lr", "opt"]


def test_a_folder_without_a_valid_spec_is_a_spec_error(single_sweep, tmp_path):
    sweep_dir = tmp_path / single_sweep.sweep
    shutil.copytree(single_sweep.sweep_dir, sweep_dir)
    spec = sweep_dir / "spec.yml"
    spec.write_text(spec.read_text().replace("mode: max", "mode: most"))
    with pytest.raises(SpecError) as caught:
        plots.plot_sweep(sweep_dir, log_to_mlflow=False, echo=None)
    assert str(caught.value).startswith(
        "the sweep's spec must be valid, got ValidationError: 1 validation error for Spec"
    )
    assert caught.value.file == str(spec)
    spec.unlink()
    with pytest.raises(SpecError) as caught:
        plots.plot_sweep(sweep_dir, log_to_mlflow=False, echo=None)
    assert str(caught.value) == (
        f"sweep must be a sweep folder with state.json and spec.yml, got {str(sweep_dir)!r}"
    )


def test_plotting_a_sweep_from_elsewhere_creates_no_store(single_sweep, tmp_path, monkeypatch):
    import json
    import shutil

    sweep_dir = tmp_path / "copy" / single_sweep.sweep
    shutil.copytree(single_sweep.sweep_dir, sweep_dir)
    state = json.loads((sweep_dir / "state.json").read_text())
    state.update(tracking_uri="sqlite:///mlflow.db", base_dir=str(tmp_path / "gone"))
    (sweep_dir / "state.json").write_text(json.dumps(state))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    plots.plot_sweep(sweep_dir, log_to_mlflow=False, echo=None)
    assert not (elsewhere / "mlflow.db").exists() and not (tmp_path / "gone").exists()


def test_plots_to_a_folder_that_cannot_be_made_is_one_error(single_sweep):
    with pytest.raises(SweepError) as caught:
        plots.plot_sweep(
            single_sweep.sweep_dir, Path("/proc/plots"), log_to_mlflow=False, echo=None
        )
    assert str(caught.value) == (
        "plots folder must be writable, got '/proc/plots' (No such file or directory)"
    )


def test_many_curves_keep_distinct_colours_and_lose_their_markers_past_30_steps():
    from matplotlib.colors import to_hex

    for count in (3, 14, 45):
        colours = [to_hex(c) for c in plots._colours(count)]
        assert len(set(colours)) == count
    assert plots._MARKERS_UP_TO == 30


def test_parallel_coordinates_use_a_colormap_dark_at_both_ends(sweep):
    import matplotlib.pyplot as plt

    data = plots._load(sweep.sweep_dir, None)
    with plots._quiet():
        figure, mpl_figure = plots._parallel(data)
    (bar,) = [trace for trace in figure.data if trace.mode == "markers"]
    assert bar.marker.colorscale[0][1] == "#440154"  # viridis' darkest end, not white
    colours = {trace.line.color for trace in figure.data if trace.mode == "lines"}
    assert colours and "rgb(247.0, 251.0, 255.0)" not in colours
    cmaps = {c.get_cmap().name for a in mpl_figure.axes for c in a.collections}
    plt.close(mpl_figure)
    assert cmaps == {"viridis"}
