"""Plots of a sweep, as PNG and HTML, logged to its MLflow parent run.

The sweep's folder is read through :class:`sweeper.history.Sweep`, as ``sweeper status`` reads
it. Optuna's visualization module draws the optimization history, the parallel coordinates and
the parameter importances from an in-memory Optuna study rebuilt from its results: one trial
per sweeper trial, in order (Optuna's number n is ``trial-{n+1:04d}``), the spec's search
dimensions as distributions (constants left out), completed trials' final metric as values,
trials stopped early as pruned, failed or halted ones as failed. Parameter importance is
PED-ANOVA's: deterministic (no random forest, no seed) and without scikit-learn. The learning
curves (the metric at every reported step, one line per trial) come from the child runs' MLflow
metric history. HTML files are plotly figures with plotly.js inlined (they work offline and in
the MLflow UI); PNG files are drawn with matplotlib's Agg backend (no browser, no kaleido).
"""

from __future__ import annotations

import json
import logging
import math
import sys
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeper._format import first_line
from sweeper._layout import SPEC_FILE, is_sweep_dir
from sweeper.errors import SpecError, SweepError
from sweeper.results import best_trials
from sweeper.spec import Choice, Parameter, Spec

if TYPE_CHECKING:
    import optuna
    import pandas as pd

    from sweeper._journal import SweepState
    from sweeper.settings import Settings

__all__ = ["ARTIFACT_PATH", "PAGE_FILE", "PARETO_PLOT", "PLOTLY_FILE", "PLOTS", "plot_sweep"]

# Where the plots go in the sweep's folder (by default) and in its parent run's artifacts.
PLOTS_DIR = "plots"
ARTIFACT_PATH = "plots"
PLOTS = ("optimization_history", "parallel_coordinate", "param_importances", "learning_curves")
# Drawn besides PLOTS for a search with several objectives.
PARETO_PLOT = "pareto_front"
# Every plot in one self-contained page (what MLflow gets), and the plotly.js the per-plot
# pages share (plotly's include_plotlyjs="directory" names it so).
PAGE_FILE = "plots.html"
PLOTLY_FILE = "plotly.min.js"
# A colormap dark enough at both ends to show on white: parallel coordinates, many curves.
_COLORMAP = "viridis"
_COLORSCALE = "Viridis"
# Past this many steps a learning curve is drawn without markers (they would blot it out).
_MARKERS_UP_TO = 30
# Line styles of the learning curves, by the trial's state (completed trials: solid).
_DASH = {"stopped": ("dash", "--"), "failed": ("dot", ":"), "halted": ("dot", ":")}


class _Skip(Exception):
    """A plot that cannot be drawn from this sweep; its message says why."""


@dataclass
class _SweepData:
    spec: Spec
    state: SweepState
    frame: pd.DataFrame  # one row per trial, as results.csv
    curves: dict[str, list[tuple[int, float]]] = field(default_factory=dict)  # trial -> steps
    study: Any = None  # the in-memory optuna.Study
    notes: list[str] = field(default_factory=list)

    @property
    def metric(self) -> str:
        return self.spec.search.metric

    def completed(self) -> list[Any]:
        import optuna

        return self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))


def plot_sweep(
    sweep_dir: Path,
    out_dir: Path | None = None,
    *,
    log_to_mlflow: bool = True,
    settings: Settings | None = None,
    echo: Callable[[str], None] | None = print,
) -> list[Path]:
    """Write the sweep's plots, each as ``<name>.png`` and ``<name>.html``, and log them.

    The plots are ``optimization_history``, ``parallel_coordinate``, ``param_importances`` and
    ``learning_curves`` (of the first objective), and with several objectives
    ``pareto_front`` (Optuna's; infeasible trials greyed, the front highlighted). One that
    cannot be drawn (too few completed trials, no parameter that varies, no metric history in
    MLflow) is skipped with a one-line note to ``echo``.

    Args:
        sweep_dir: The sweep's folder (with ``state.json``, ``spec.yml`` and its journal).
        out_dir: Where to write the files; default ``<sweep_dir>/plots``.
        log_to_mlflow: Also log the files to the sweep's MLflow parent run, under ``plots/``.
        settings: Whose MLflow tracking URI to use when ``state.json`` names none.
        echo: Where notes, the files written and the MLflow run go (``None``: silent).

    Returns:
        The files written: PNG, then HTML, of each plot drawn, in the order above.

    Raises:
        SpecError: If ``sweep_dir`` is not a sweep folder.
        SweepError: If the plots could not be logged to MLflow (they are written all the same).
    """
    say = echo or (lambda line: None)
    sweep_dir = Path(sweep_dir)
    out_dir = Path(out_dir) if out_dir is not None else sweep_dir / PLOTS_DIR
    written: list[Path] = []
    with _quiet():
        data = _load(sweep_dir, settings)
        for note in data.notes:
            say(f"note: {note}")
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SweepError(
                f"plots folder must be writable, got {str(out_dir)!r} ({exc.strerror or exc})"
            ) from None
        names = [*PLOTS, PARETO_PLOT] if data.spec.search.multi_objective else list(PLOTS)
        figures = []
        page: Path | None = None
        bundled = (out_dir / PLOTLY_FILE).exists()
        for name in names:
            try:
                plotly_fig, mpl_fig = _DRAW[name](data)
            except _Skip as skip:
                say(f"note: {name} skipped: {skip}")
                continue
            written.extend(_save(name, plotly_fig, mpl_fig, out_dir, say))
            figures.append(plotly_fig)
        if figures:
            page = _save_page(data.state.sweep, figures, out_dir, say)
            written += [page, out_dir / PLOTLY_FILE]
            if not bundled:
                say(f"wrote {out_dir / PLOTLY_FILE}")
    if log_to_mlflow and written:
        # The PNGs and the one page: the per-plot pages need plotly.min.js beside them.
        _log_artifacts(data, [p for p in written if p.suffix == ".png" or p == page], say)
    return written


def _load(sweep_dir: Path, settings: Settings | None) -> _SweepData:
    from sweeper.history import Sweep

    if not is_sweep_dir(sweep_dir) or not (sweep_dir / SPEC_FILE).is_file():
        raise SpecError(
            f"sweep must be a sweep folder with state.json and spec.yml, got {str(sweep_dir)!r}"
        )
    sweep = Sweep(sweep_dir)
    # The spec's own fields only: the training code and data need not be on this machine.
    spec = sweep.spec_fields
    state = sweep.state
    if state.tracking_uri is None:
        from sweeper.settings import load_settings

        state.tracking_uri = (settings or load_settings()).mlflow.tracking_uri
    from sweeper.tracking import absolute_uri

    # A sweep recorded before its store's path was absolute: the folder it ran from.
    state.tracking_uri = absolute_uri(state.tracking_uri, Path(state.base_dir or "."))
    data = _SweepData(spec=spec, state=state, frame=sweep.results)
    _read_curves(data)
    data.study = _study(data)
    return data


def _client(data: _SweepData) -> Any:
    from mlflow.tracking import MlflowClient

    from sweeper.tracking import store_missing

    if store_missing(data.state.tracking_uri or ""):  # MLflow would create an empty one
        raise SweepError(
            f"the sweep's MLflow store must exist, got {data.state.tracking_uri} missing",
            hint="plot with --no-mlflow, or from where the sweep ran",
        )

    for name in ("mlflow.store.db.utils", "alembic"):  # a new SQLite store's migration notes
        logging.getLogger(name).setLevel(logging.WARNING)
    return MlflowClient(tracking_uri=data.state.tracking_uri)


def _read_curves(data: _SweepData) -> None:
    """Each trial's metric per step, from its child run's MLflow metric history."""
    parent = data.state.parent_run_id
    if not parent or data.frame.empty:
        return
    try:
        client = _client(data)
        experiment = client.get_run(parent).info.experiment_id
        query = f"tags.mlflow.parentRunId = '{parent}'"
        children = client.search_runs([experiment], filter_string=query, max_results=50000)
        runs = {r.data.tags.get("sweeper.trial"): r.info.run_id for r in children}
        for row in data.frame.itertuples(index=False):
            run_id = runs.get(row.trial) or getattr(row, "mlflow_run_id", None)
            if not isinstance(run_id, str):
                continue
            history = sorted(
                client.get_metric_history(run_id, data.metric), key=lambda m: m.timestamp
            )
            # A retried trial logs its steps again: the last value of a step stands.
            steps = {m.step: m.value for m in history if math.isfinite(m.value)}
            if steps:
                data.curves[row.trial] = sorted(steps.items())
    except Exception as exc:
        data.notes.append(
            f"no learning curves: the MLflow store {data.state.tracking_uri} could not be "
            f"read ({_why(exc)})"
        )


def _why(exc: Exception) -> str:
    return f"{type(exc).__name__}: {first_line(exc)}"


def _number(value: Any) -> float | None:  # a finite float, or None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _plain(value: Any) -> Any:
    value = value.item() if hasattr(value, "item") else value  # numpy scalars to Python's
    scalar = value is None or isinstance(value, (bool, int, float, str))
    return value if scalar else json.dumps(value, sort_keys=True)


def _distribution(param: Parameter) -> optuna.distributions.BaseDistribution:
    from optuna.distributions import CategoricalDistribution

    from sweeper.search import optuna_distribution

    if isinstance(param, Choice):
        # Optuna's categories are scalars: a list or mapping choice is shown as its JSON.
        return CategoricalDistribution([_plain(v) for v in param.values])
    return optuna_distribution(param)


def _study(data: _SweepData) -> optuna.Study:
    """An in-memory Optuna study with one trial per trial of the sweep, in the same order."""
    import optuna
    from optuna.trial import TrialState

    states = {"completed": TrialState.COMPLETE, "stopped": TrialState.PRUNED}
    states.update(failed=TrialState.FAIL, halted=TrialState.FAIL)  # halted: interrupted
    distributions = {name: _distribution(p) for name, p in data.spec.dimensions.items()}
    study = optuna.create_study(
        direction="maximize" if data.spec.search.mode == "max" else "minimize",
        study_name=data.state.sweep,
    )
    for row in data.frame.to_dict("records"):
        state = states.get(row["state"], TrialState.RUNNING)  # queued or running: not over yet
        params = {}
        for name in distributions:
            value = row.get(f"params.{name}")
            if value is not None and not (isinstance(value, float) and math.isnan(value)):
                params[name] = _plain(value)
        value = _number(row.get(data.metric))
        if state == TrialState.COMPLETE and value is None:
            state = TrialState.FAIL  # completed without reporting the metric
        try:
            study.add_trial(
                optuna.trial.create_trial(
                    params=params,
                    distributions={k: distributions[k] for k in params},
                    value=value if state == TrialState.COMPLETE else None,
                    intermediate_values=dict(data.curves.get(row["trial"], [])),
                    user_attrs={"trial": row["trial"]},  # shown on hover in the HTML plots
                    state=state,
                )
            )
        except ValueError as exc:
            data.notes.append(f"{row['trial']} left out of the plots: {exc}")
    return study


def _varying(data: _SweepData) -> list[str]:
    """The search dimensions that take more than one value among the completed trials."""
    seen: dict[str, set[Any]] = {}
    for trial in data.completed():
        for name, value in trial.params.items():
            seen.setdefault(name, set()).add(value)
    return [name for name in data.spec.dimensions if len(seen.get(name, ())) > 1]


def _need_completed(data: _SweepData, count: int) -> None:
    if (got := len(data.completed())) < count:
        trials = "trial" if count == 1 else "trials"
        raise _Skip(f"needs at least {count} completed {trials} with {data.metric}, got {got}")


def _optuna_plot(function: str, data: _SweepData, **options: Any) -> tuple[Any, Any]:
    """Optuna's plotly figure and its matplotlib twin, of the sweep's metric."""
    from optuna import visualization
    from optuna.visualization import matplotlib as mpl

    options["target_name"] = data.metric
    figure = getattr(visualization, function)(data.study, **options)
    return figure, getattr(mpl, function)(data.study, **options).figure


def _history(data: _SweepData) -> tuple[Any, Any]:
    _need_completed(data, 1)
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    figure, mpl_fig = _optuna_plot("plot_optimization_history", data)
    # Optuna numbers trials from 0: show sweeper's numbers (trial-0001 is 1), names on hover.
    names = [trial.user_attrs["trial"] for trial in data.study.trials]
    hover = "%{text}<br>%{y}<extra>%{fullData.name}</extra>"
    for trace in figure.data:
        numbers = [int(number) for number in trace.x or ()]
        text = [names[number] for number in numbers]
        trace.update(x=[n + 1 for n in numbers], text=text, hovertemplate=hover)
    # Whole trials on the axis (Optuna's ticks fall between them on a short sweep).
    figure.update_xaxes(tickformat="d", dtick=1 if len(names) <= 20 else None)
    axis = mpl_fig.axes[0].xaxis
    axis.set_major_locator(MaxNLocator(integer=True))
    axis.set_major_formatter(FuncFormatter(lambda x, _: f"{x + 1:g}"))
    return figure, mpl_fig


def _parallel(data: _SweepData) -> tuple[Any, Any]:
    if not data.spec.dimensions:
        raise _Skip("the spec has no search dimension, only constants")
    _need_completed(data, 2)
    figure, mpl_fig = _optuna_plot(
        "plot_parallel_coordinate", data, params=list(data.spec.dimensions)
    )
    # Optuna colours by a light-to-dark blue: the worst trials all but vanish on white.
    _recolour_parallel(figure)
    for axes in mpl_fig.axes:
        for collection in axes.collections:
            collection.set_cmap(_COLORMAP)
    return figure, mpl_fig


def _recolour_parallel(figure: Any) -> None:
    """Optuna's parallel coordinates in :data:`_COLORSCALE`: its plotly figure is a line per
    trial, coloured from the value in its ``customdata``, and a marker trace for the bar."""
    from plotly.colors import sample_colorscale

    bars = [t for t in figure.data if t.mode == "markers" and t.marker.colorscale is not None]
    if not bars:
        return
    bar = bars[0]
    low, high, flip = bar.marker.cmin, bar.marker.cmax, bool(bar.marker.reversescale)
    bar.marker.colorscale = _COLORSCALE
    for trace in figure.data:
        if trace.mode != "lines" or not trace.customdata:
            continue
        try:
            value = float(trace.customdata[0][1])
        except (TypeError, ValueError, IndexError):
            continue
        at = 0.5 if high == low else min(1.0, max(0.0, (value - low) / (high - low)))
        trace.line.color = sample_colorscale(_COLORSCALE, [1 - at if flip else at])[0]


def _importance(data: _SweepData) -> tuple[Any, Any]:
    from optuna.importance import PedAnovaImportanceEvaluator

    _need_completed(data, 2)
    params = _varying(data)
    if not params:
        raise _Skip("needs a parameter that varies among the completed trials, got none")
    if len({trial.value for trial in data.completed()}) < 2:
        raise _Skip(f"needs completed trials with different {data.metric}, got one value")
    evaluator = PedAnovaImportanceEvaluator()  # deterministic: no random forest, no seed
    return _optuna_plot("plot_param_importances", data, evaluator=evaluator, params=params)


def _learning_curves(data: _SweepData) -> tuple[Any, Any]:
    """The metric at every reported step, one line per trial, styled by the trial's state:
    a colour each (as distinct as their number allows), the best trial bold, markers only on
    short curves, the legend beside the plot."""
    import matplotlib.pyplot as plt
    import plotly.graph_objects as go
    from matplotlib.colors import to_hex

    if not data.curves:
        raise _Skip(f"no trial has a {data.metric} history in MLflow")
    states = dict(zip(data.frame["trial"], data.frame["state"], strict=True))
    ranked = best_trials(data.spec, data.frame, 1)
    best = None if ranked.empty else str(ranked.iloc[0]["trial"])
    title = f"Learning curves: {data.metric} per step ({data.state.sweep})"
    figure = go.Figure()
    mpl_fig, ax = plt.subplots(figsize=(10, 5.5))
    colours = _colours(len(data.curves))
    markers = max(len(curve) for curve in data.curves.values()) <= _MARKERS_UP_TO
    for (trial, curve), colour in zip(data.curves.items(), colours, strict=True):
        steps = [step for step, _ in curve]
        values = [value for _, value in curve]
        state = states.get(trial, "running")
        dash, style = _DASH.get(state, ("solid", "-"))
        bold = trial == best
        label = f"{trial} ({state})" + (", best" if bold else "")
        hover = f"{trial}<br>step %{{x}}<br>{data.metric} %{{y}}<extra>{state}</extra>"
        line = {"dash": dash, "color": to_hex(colour), "width": 4 if bold else 1.5}
        figure.add_trace(
            go.Scatter(
                x=steps,
                y=values,
                name=label,
                line=line,
                mode="lines+markers" if markers else "lines",
                hovertemplate=hover,
            )
        )
        ax.plot(
            steps,
            values,
            linestyle=style,
            color=colour,
            linewidth=3 if bold else 1.2,
            zorder=3 if bold else 2,
            marker="o" if markers else None,
            markersize=3,
            label=label,
        )
    figure.update_layout(title=title, xaxis_title="step", yaxis_title=data.metric)
    ax.set(title=title, xlabel="step", ylabel=data.metric)
    ax.grid(alpha=0.3)
    if len(data.curves) <= 30:  # beyond, the PNG has no legend (the HTML names on hover)
        ax.legend(
            fontsize="small",
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            borderaxespad=0,
            ncol=1 if len(data.curves) <= 15 else 2,
        )
    return figure, mpl_fig


def _colours(count: int) -> list[Any]:
    """``count`` colours told apart: tab10's, tab20's, else evenly along a dark colormap."""
    import matplotlib.pyplot as plt

    if count <= 10:
        return [plt.get_cmap("tab10")(i) for i in range(count)]
    if count <= 20:
        return [plt.get_cmap("tab20")(i) for i in range(count)]
    cmap = plt.get_cmap(_COLORMAP)
    return [cmap(i / max(1, count - 1) * 0.9) for i in range(count)]


def _pareto_study(data: _SweepData) -> optuna.Study:
    """The completed trials with every objective's value, in a study with their directions,
    and their constraint values (Optuna's plot shows infeasible trials apart)."""
    import optuna

    objectives = data.spec.search.objectives
    constraints = data.spec.search.parsed_constraints
    study = optuna.create_study(
        directions=["maximize" if o.mode == "max" else "minimize" for o in objectives],
        study_name=data.state.sweep,
    )
    for row in data.frame.to_dict("records"):
        numbers = [_number(row.get(o.name)) for o in objectives]
        values = [v for v in numbers if v is not None]
        if row["state"] != "completed" or len(values) < len(objectives):
            continue
        reported = {c.metric: _number(row.get(f"metrics.{c.metric}")) for c in constraints}
        study.add_trial(
            optuna.trial.create_trial(
                values=values,
                user_attrs={"trial": row["trial"]},
                constraints={c.text: c.violation(reported[c.metric]) for c in constraints},
            )
        )
    return study


def _pareto(data: _SweepData) -> tuple[Any, Any]:
    from optuna import visualization
    from optuna.visualization import matplotlib as mpl

    study = _pareto_study(data)
    objectives = data.spec.search.objectives
    if len(study.trials) < 1:
        names = ", ".join(o.name for o in objectives)
        raise _Skip(f"needs a completed trial with a value for every objective ({names})")
    options: dict[str, Any] = {"target_names": [o.name for o in objectives]}
    if len(objectives) > 3:
        options["targets"] = lambda trial: tuple(trial.values[:3])
        options["target_names"] = options["target_names"][:3]
        data.notes.append("pareto_front shows the first 3 objectives")
    figure = visualization.plot_pareto_front(study, **options)
    axes = mpl.plot_pareto_front(study, **options)
    return figure, axes.figure


_DRAW = dict(zip(PLOTS, (_history, _parallel, _importance, _learning_curves), strict=True))
_DRAW[PARETO_PLOT] = _pareto


@contextmanager
def _quiet() -> Any:
    """Agg for new figures, Optuna's style and warnings kept from leaking out of the plots."""
    import matplotlib
    import optuna

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")  # a process that already drew keeps its backend
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with warnings.catch_warnings(), matplotlib.rc_context():
            # Optuna's matplotlib plots are "experimental" and warn about it on every call.
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            warnings.simplefilter("ignore", UserWarning)
            yield
    finally:
        optuna.logging.set_verbosity(verbosity)


def _save(name: str, plotly_fig: Any, mpl_fig: Any, out_dir: Path, say: Callable) -> list[Path]:
    import matplotlib.pyplot as plt

    png, html = out_dir / f"{name}.png", out_dir / f"{name}.html"
    try:
        mpl_fig.savefig(png, dpi=110, bbox_inches="tight")
    finally:
        plt.close(mpl_fig)
    # plotly.js (4.6 MB) once per folder, beside the pages, not inlined in each of them.
    plotly_fig.write_html(html, include_plotlyjs="directory", full_html=True)
    for path in (png, html):
        say(f"wrote {path}")
    return [png, html]


def _save_page(sweep: str, figures: list[Any], out_dir: Path, say: Callable) -> Path:
    """Every plot in one self-contained page (plotly.js inlined once): what goes to MLflow,
    whose UI shows an HTML artifact in a sandbox that loads no file beside it."""
    parts = [
        figure.to_html(full_html=False, include_plotlyjs=i == 0) for i, figure in enumerate(figures)
    ]
    page = out_dir / PAGE_FILE
    page.write_text(
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{sweep}</title></head>'
        f"<body>\n<h1>{sweep}</h1>\n" + "\n".join(parts) + "\n</body></html>\n",
        encoding="utf-8",
    )
    say(f"wrote {page}")
    return page


def _log_artifacts(data: _SweepData, paths: list[Path], say: Callable[[str], None]) -> None:
    run_id = data.state.parent_run_id
    hint = f"they are written to {paths[0].parent}; plot with --no-mlflow to skip MLflow"
    if not run_id:
        error = f"sweep {data.state.sweep} must have an MLflow run to log plots to, got none"
        raise SweepError(error, hint=hint)
    try:
        client = _client(data)
        for path in paths:
            client.log_artifact(run_id, str(path), artifact_path=ARTIFACT_PATH)
        run = client.get_run(run_id)
    except Exception as exc:
        where = f"MLflow run {run_id} in {data.state.tracking_uri}"
        raise SweepError(f"plots must be logged to {where}, got {_why(exc)}", hint=hint) from None
    say(
        f"logged {len(paths)} files to MLflow run {run_id} (sweep {data.state.sweep}, experiment "
        f"{data.state.experiment or data.spec.name}) under {ARTIFACT_PATH}/: "
        f"{run.info.artifact_uri.rstrip('/')}/{ARTIFACT_PATH}"
    )
