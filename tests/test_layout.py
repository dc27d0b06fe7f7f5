"""How a sweep is named (``sweeper._layout.resolve_sweep``): folder, id, spec name, id prefix or
nothing, and the commands that take one saying which sweep they picked."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from sweeper._journal import SweepState
from sweeper._layout import resolve_sweep
from sweeper.cli import main
from sweeper.errors import NotFoundError
from sweeper.settings import load_settings

SWEEPS = [  # (id, spec name, created)
    ("digits-pytorch-20261201-100000", "digits-pytorch", 100.0),
    ("digits-pytorch-20261202-100000", "digits-pytorch", 200.0),
    ("digits-pytorch-asha-20261203-100000", "digits-pytorch-asha", 300.0),
    ("mnist-20261130-090000", "mnist", 50.0),
]


@pytest.fixture
def results(tmp_path: Path) -> Path:
    root = tmp_path / "results"
    for sweep, spec, created in SWEEPS:
        folder = root / sweep
        folder.mkdir(parents=True)
        SweepState(sweep=sweep, spec=spec, status="completed", created=created).save(folder)
    (root / "not-a-sweep").mkdir()
    return root


def settings(root: Path):
    return load_settings(environ={"SWEEPER_RESULTS_DIR": str(root)})


OLD, NEW, ASHA, MNIST = (sweep for sweep, _, _ in SWEEPS)


@pytest.mark.parametrize(
    ("ref", "sweep", "picked"),
    [
        (OLD, OLD, None),
        ("digits-pytorch", NEW, "the newest of 2 sweeps of spec digits-pytorch"),
        ("digits-pytorch-asha", ASHA, "the only sweep of spec digits-pytorch-asha"),
        ("mni", MNIST, "the only id that starts 'mni'"),
        ("digits-pytorch-20261201", OLD, "the only id that starts 'digits-pytorch-20261201'"),
        (None, ASHA, "the newest sweep under {root}"),
    ],
)
def test_each_way_of_naming_a_sweep(results: Path, ref, sweep: str, picked) -> None:
    found = resolve_sweep(ref, settings(results))
    assert found.folder == (results / sweep).resolve()
    assert found.picked == (picked.format(root=results) if picked else None)


def test_a_folder_names_its_sweep_exactly(results: Path) -> None:
    folder = results / "mnist-20261130-090000"
    assert resolve_sweep(str(folder), settings(results)).picked is None


def test_an_ambiguous_prefix_lists_the_matches(results: Path) -> None:
    with pytest.raises(NotFoundError) as caught:
        resolve_sweep("digits", settings(results))
    assert str(caught.value) == (
        "sweep must name one sweep, got 'digits', which starts 3 ids: "
        "digits-pytorch-20261201-100000, digits-pytorch-20261202-100000, "
        "digits-pytorch-asha-20261203-100000; type more of the id, or a spec's name for its "
        "newest sweep"
    )


def test_nothing_to_pick_from(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError) as caught:
        resolve_sweep(None, settings(tmp_path))
    assert str(caught.value) == (
        f"sweep must be named, got nothing, and there is no sweep under {tmp_path}; run one "
        "first: sweeper run experiment.yml"
    )


def test_commands_say_first_which_sweep_they_picked(results: Path) -> None:
    runner = CliRunner(env={"SWEEPER_RESULTS_DIR": str(results)})
    for args in (
        ["status", "digits-pytorch"],
        ["show", "digits-pytorch"],
        ["export", "-o", str(results.parent / "x.csv"), "digits-pytorch"],
    ):
        done = runner.invoke(main, args)
        assert done.stderr.splitlines()[0] == (
            "sweep digits-pytorch-20261202-100000 (the newest of 2 sweeps of spec digits-pytorch)"
        ), args
    done = runner.invoke(main, ["status"])
    assert done.exit_code == 0, done.output
    assert done.stderr.splitlines()[0] == (
        f"sweep digits-pytorch-asha-20261203-100000 (the newest sweep under {results})"
    )
    assert "sweep:    digits-pytorch-asha-20261203-100000" in done.stdout
    exact = runner.invoke(main, ["status", "mnist-20261130-090000"])
    assert exact.exit_code == 0 and exact.stderr == ""  # named exactly: nothing to say
