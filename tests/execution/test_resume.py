"""Crash-proof sweeps through the CLI: SIGKILL of the driver, `sweeper stop`, Ctrl-C, resume.

Each test drives `sweeper` in a subprocess with its own local Ray, as a user would.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import optuna
import pandas as pd
import pytest

from sweeper._journal import SweepState, read_journal

ROOT = Path(__file__).resolve().parents[2]
TRAINABLES = ROOT / "tests" / "_code" / "trainables.py"

pytestmark = pytest.mark.slow

GRID_SPEC = f"""\
name: crash
framework: python
entrypoint: {TRAINABLES}:steps
parameters:
  x: {{choice: [1, 2, 3, 4, 5, 6]}}
  epochs: 4
  sleep: 0.4
search: {{method: grid, metric: score, mode: max, concurrency: 2}}
"""

OPTUNA_SPEC = f"""\
name: crash
framework: python
entrypoint: {TRAINABLES}:steps
parameters:
  x: {{uniform: [0, 10]}}
  epochs: 4
  sleep: 0.4
search: {{method: optuna, sampler: tpe, trials: 8, seed: 1, metric: score, mode: max,
          concurrency: 2}}
"""


def states(cli) -> dict[str, str]:
    results = cli.folder / "results"
    if not results.is_dir() or not any(results.iterdir()):
        return {}
    return {name: r.state for name, r in read_journal(cli.sweep_dir()).items()}


def halfway(cli) -> bool:
    """Two trials completed and another one running."""
    now = states(cli)
    done = sum(1 for s in now.values() if s == "completed")
    return done >= 2 and any(s == "running" for s in now.values())


def attempts(sweep_dir: Path, trial: str) -> int:
    return int((sweep_dir / "trials" / trial / "attempt").read_text())


def killed_halfway(cli, spec: str) -> tuple[Path, dict[str, str]]:
    """Start a sweep, SIGKILL its driver once two trials completed; return what it left."""
    (cli.folder / "experiment.yml").write_text(spec)
    driver = cli.start("run", "experiment.yml")
    try:
        cli.wait_for(lambda: halfway(cli), driver)
    finally:
        driver.kill()  # SIGKILL: no handler, no cleanup
        driver.communicate(timeout=60)
    sweep_dir = cli.sweep_dir()
    before = states(cli)
    assert SweepState.load(sweep_dir).shown_status == "interrupted"
    return sweep_dir, before


def check_resumed(cli, sweep_dir: Path, before: dict[str, str], total: int) -> pd.DataFrame:
    """The resumed sweep has every trial once, completed; finished ones did not run again."""
    frame = pd.read_csv(sweep_dir / "results.csv").set_index("trial")
    assert list(frame.index) == [f"trial-{i:04d}" for i in range(1, total + 1)]
    assert set(frame["state"]) == {"completed"}
    for trial, state in before.items():
        if state == "completed":
            assert attempts(sweep_dir, trial) == 1  # not run again
    # Trials that held resources when the driver died ran again, once.
    interrupted = [t for t, s in before.items() if s in ("starting", "running", "storing")]
    assert interrupted
    assert set(frame.loc[interrupted, "attempts"]) == {2}
    state = SweepState.load(sweep_dir)
    assert state.status == "completed" and state.sessions == 2
    children = cli.children(state.parent_run_id, "crash")
    assert sorted(children["tags.mlflow.runName"]) == list(frame.index)  # one run per trial
    assert set(children["status"]) == {"FINISHED"}
    tagged = children.set_index("tags.mlflow.runName")["tags.sweeper.interrupted"]
    assert set(tagged[interrupted]) == {"true"}  # interrupted runs say so
    return frame


def test_a_grid_killed_halfway_resumes_with_exactly_its_missing_trials(cli):
    sweep_dir, before = killed_halfway(cli, GRID_SPEC)
    # By its id, under the default, relative results folder: Ray and pyarrow get it absolute.
    cli.env["SWEEPER_RESULTS_DIR"] = "results"
    done = cli.run("resume", sweep_dir.name)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    remaining = 6 - sum(1 for s in before.values() if s == "completed")
    assert f"{remaining} of 6 trials to run" in done.stdout
    frame = check_resumed(cli, sweep_dir, before, 6)
    assert list(frame["params.x"]) == [1, 2, 3, 4, 5, 6]  # each grid point once


def study_trials(sweep_dir: Path) -> list[optuna.trial.FrozenTrial]:
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(sweep_dir / "optuna.journal"))
    )
    (study,) = optuna.get_all_study_summaries(storage)
    return optuna.load_study(study_name=study.study_name, storage=storage).trials


def test_an_optuna_sweep_killed_halfway_resumes_its_study(cli):
    sweep_dir, before = killed_halfway(cli, OPTUNA_SPEC)
    # Tune tells the study a trial ended just before sweeper's journal hears of it: a trial the
    # kill caught in between counts as finished, from the study (see adopt_finished).
    for trial in study_trials(sweep_dir):
        if trial.state.name in ("COMPLETE", "PRUNED"):
            before[trial.user_attrs["sweeper_trial"]] = "completed"  # Tune reported: named
    done = cli.run("run", "experiment.yml", "--resume")  # `run` on the same spec resumes it
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"resuming sweep {sweep_dir.name} (session 2)" in done.stdout
    frame = check_resumed(cli, sweep_dir, before, 8)
    trials = study_trials(sweep_dir)
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    # The resumed search continued the same study: the first session's trials are in it, with
    # their values, and the sampler asked for the rest knowing them.
    assert sorted(t.user_attrs["sweeper_trial"] for t in complete) == list(frame.index)
    for t in complete:
        assert t.value == pytest.approx(frame.loc[t.user_attrs["sweeper_trial"], "score"])
    first_session = [
        t for t in complete if before.get(t.user_attrs["sweeper_trial"]) == "completed"
    ]
    assert len(first_session) >= 2
    later = [t for t in complete if t not in first_session]
    assert min(t.number for t in later) > min(t.number for t in first_session)
    # An interrupted trial went back into the queue with its values, under its name. A trial
    # the kill caught between Optuna's ask and sweeper naming it never ran: it is settled.
    orphans = [t for t in trials if t.user_attrs.get("sweeper_orphan")]
    assert all(t.state.name == "FAIL" and "sweeper_trial" not in t.user_attrs for t in orphans)
    failed = [t for t in trials if t.state.name == "FAIL" and t not in orphans]
    assert failed
    for t in failed:
        (again,) = [
            c for c in complete if c.user_attrs["sweeper_trial"] == t.user_attrs["sweeper_trial"]
        ]
        assert again.params == t.params


def test_sweeper_stop_halts_a_running_sweep_which_resumes(cli):
    (cli.folder / "experiment.yml").write_text(GRID_SPEC)
    driver = cli.start("run", "experiment.yml")
    cli.wait_for(lambda: halfway(cli), driver)
    sweep_dir = cli.sweep_dir()
    stopped = cli.run("stop", sweep_dir.name, timeout=120)
    out, err = driver.communicate(timeout=120)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert stopped.stdout.splitlines() == [
        f"stop requested for sweep {sweep_dir.name}",
        f"sweep {sweep_dir.name} halted: stop requested (sweeper stop)",
    ]
    assert driver.returncode == 0, out + err
    assert (
        f"sweep halted: stop requested (sweeper stop); resume it with: sweeper resume {sweep_dir}"
        in out
    )
    frame = pd.read_csv(sweep_dir / "results.csv").set_index("trial")
    halted = list(frame.index[frame["state"] == "halted"])
    assert halted  # the running trials were stopped, their results kept
    for trial in halted:
        assert (sweep_dir / "trials" / trial / "output" / "steps.log").is_file()
    state = SweepState.load(sweep_dir)
    assert state.status == "halted"
    children = cli.children(state.parent_run_id, "crash").set_index("tags.mlflow.runName")
    assert set(children.loc[halted, "status"]) == {"KILLED"}

    done = cli.run("resume", sweep_dir.name)
    assert done.returncode == 0, done.stdout + done.stderr
    frame = pd.read_csv(sweep_dir / "results.csv")
    assert len(frame) == 6 and set(frame["state"]) == {"completed"}
    assert len(cli.children(state.parent_run_id, "crash")) == 6


def test_ctrl_c_halts_the_sweep_gracefully(cli):
    (cli.folder / "experiment.yml").write_text(GRID_SPEC)
    driver = cli.start("run", "experiment.yml")
    cli.wait_for(lambda: halfway(cli), driver)
    driver.send_signal(signal.SIGINT)
    out, err = driver.communicate(timeout=120)
    sweep_dir = cli.sweep_dir()
    assert driver.returncode == 130, out + err
    assert "halting the sweep" in err
    assert err.rstrip().splitlines()[-1] == (
        f"error: interrupted; resume with: sweeper resume {sweep_dir}"
    )
    assert "Traceback" not in err
    state = SweepState.load(sweep_dir)
    assert state.status == "halted" and state.reason == "interrupted (Ctrl-C)"
    frame = pd.read_csv(sweep_dir / "results.csv")
    assert "halted" in set(frame["state"])
    again = cli.run("resume", sweep_dir.name)
    assert again.returncode == 0, again.stdout + again.stderr
    assert set(pd.read_csv(sweep_dir / "results.csv")["state"]) == {"completed"}


@pytest.mark.parametrize("moment", ["while Ray starts", "after the first trials ended"])
def test_a_sigterm_outside_tunes_loop_halts_the_sweep_too(cli, moment):
    """Not Ray's own handler (sys.exit(15), no message, the sweep failed): the same halt as
    inside Tune's loop, at every moment of a run."""
    (cli.folder / "experiment.yml").write_text(GRID_SPEC)
    driver = cli.start("run", "experiment.yml")
    if moment == "while Ray starts":
        # state.json is written just before Ray starts, which takes seconds.
        cli.wait_for(lambda: any((cli.folder / "results").glob("*/state.json")), driver)
    else:
        cli.wait_for(lambda: halfway(cli), driver)
    driver.send_signal(signal.SIGTERM)
    out, err = driver.communicate(timeout=120)
    sweep_dir = cli.sweep_dir()
    assert driver.returncode == 143, out + err
    assert err.rstrip().splitlines()[-1] == (
        f"error: interrupted; resume with: sweeper resume {sweep_dir}"
    )
    assert "Traceback" not in err
    state = SweepState.load(sweep_dir)
    assert state.status == "halted" and state.reason == "interrupted (SIGTERM)"
    completed = [n for n, s in states(cli).items() if s == "completed"]
    frame = pd.read_csv(sweep_dir / "results.csv")  # rebuilt from the journal, never empty
    assert sorted(frame.loc[frame["state"] == "completed", "trial"]) == sorted(completed)
    again = cli.run("resume", sweep_dir.name)
    assert again.returncode == 0, again.stdout + again.stderr
    assert set(pd.read_csv(sweep_dir / "results.csv")["state"]) == {"completed"}


def test_resume_of_an_unknown_sweep_is_a_one_line_error(cli):
    done = cli.run("resume", "nope")
    assert done.returncode == 1
    assert done.stderr == (
        "error: sweep must be a sweep folder, id, id prefix or spec name, got 'nope'; sweeps "
        f"are folders under {cli.folder / 'results'}\n"
    )


def test_stop_of_a_sweep_that_is_not_running_says_so_and_exits_0(cli, tmp_path):
    sweep_dir = tmp_path / "results" / "crash-1"
    sweep_dir.mkdir(parents=True)
    SweepState(sweep="crash-1", spec="crash", status="completed").save(sweep_dir)
    done = cli.run("stop", str(sweep_dir))
    assert done.returncode == 0, done.stderr
    assert done.stdout == "sweep crash-1 is not running (completed); nothing to stop\n"
    assert json.loads((sweep_dir / "state.json").read_text())["status"] == "completed"


def test_resume_of_a_completed_sweep_says_so_and_starts_nothing(
    talking_sweep, tmp_path, monkeypatch
):
    import shutil

    from sweeper.execution import _sweep

    sweep_dir = tmp_path / "results" / talking_sweep.result.sweep
    shutil.copytree(talking_sweep.result.sweep_dir, sweep_dir)
    before = (sweep_dir / "state.json").read_text(), (sweep_dir / "trials.jsonl").read_text()

    def must_not_run(*args, **kwargs):
        raise AssertionError("resume of a completed sweep drove a session")

    monkeypatch.setattr(_sweep, "_drive", must_not_run)
    lines: list[str] = []
    result = _sweep.resume(sweep_dir, talking_sweep.settings, echo=lines.append)
    assert lines == [
        f"sweep {result.sweep} is complete: nothing to resume (1 failed trials: add --retry-failed)"
    ]
    assert result.status == "completed" and len(result.results) == 3 and result.failed == 1
    assert (
        (sweep_dir / "state.json").read_text(),
        (sweep_dir / "trials.jsonl").read_text(),
    ) == before


def new_trials_halfway(cli, sweep_dir: Path, old: set[str]) -> bool:
    """Two trials besides ``old`` completed and another one running."""
    now = {name: r.state for name, r in read_journal(sweep_dir).items() if name not in old}
    done = sum(1 for s in now.values() if s == "completed")
    return done >= 2 and any(s == "running" for s in now.values())


def named_once(trials: list[optuna.trial.FrozenTrial]) -> list[str]:
    """The names of the study's completed trials, checked to be each there once."""
    names = [
        t.user_attrs["sweeper_trial"]
        for t in trials
        if t.state.name == "COMPLETE" and "sweeper_seeded_from" not in t.user_attrs
    ]
    assert len(names) == len(set(names))
    return sorted(names)


def test_an_extension_killed_halfway_resumes_with_no_trial_lost_or_run_twice(cli):
    (cli.folder / "experiment.yml").write_text(OPTUNA_SPEC.replace("trials: 8", "trials: 4"))
    first = cli.run("run", "experiment.yml")
    assert first.returncode == 0, first.stdout + first.stderr
    sweep_dir = cli.sweep_dir()
    old = set(read_journal(sweep_dir))
    driver = cli.start("extend", sweep_dir.name, "--trials", "+6")
    try:
        cli.wait_for(lambda: new_trials_halfway(cli, sweep_dir, old), driver)
    finally:
        driver.kill()  # SIGKILL during the extension's session
        driver.communicate(timeout=60)
    before = states(cli)
    assert SweepState.load(sweep_dir).shown_status == "interrupted"
    for trial in study_trials(sweep_dir):
        if trial.state.name == "COMPLETE":
            before[trial.user_attrs["sweeper_trial"]] = "completed"  # see adopt_finished
    done = cli.run("resume", sweep_dir.name)
    assert done.returncode == 0, done.stdout + done.stderr
    frame = pd.read_csv(sweep_dir / "results.csv").set_index("trial")
    assert list(frame.index) == [f"trial-{i:04d}" for i in range(1, 11)]
    assert set(frame["state"]) == {"completed"}
    for trial in old:
        assert attempts(sweep_dir, trial) == 1  # the first session's trials never ran again
    for trial, state in before.items():
        if state == "completed":
            assert attempts(sweep_dir, trial) == 1
    assert named_once(study_trials(sweep_dir)) == list(frame.index)  # one study, each once
    state = SweepState.load(sweep_dir)
    assert state.sessions == 3 and len(state.extensions) == 1
    children = cli.children(state.parent_run_id, "crash")
    assert sorted(children["tags.mlflow.runName"]) == list(frame.index)


def test_a_warm_started_sweep_killed_halfway_resumes_with_its_seeds_once(cli):
    (cli.folder / "experiment.yml").write_text(OPTUNA_SPEC.replace("trials: 8", "trials: 3"))
    first = cli.run("run", "experiment.yml")
    assert first.returncode == 0, first.stdout + first.stderr
    seed = cli.sweep_dir()
    (cli.folder / "new.yml").write_text(OPTUNA_SPEC.replace("trials: 8", "trials: 6"))
    driver = cli.start("run", "new.yml", "--warm-start", seed.name)
    try:

        def started() -> bool:
            others = [f for f in (cli.folder / "results").iterdir() if f != seed]
            return bool(others) and new_trials_halfway(cli, others[0], set())

        cli.wait_for(started, driver)
    finally:
        driver.kill()
        driver.communicate(timeout=60)
    (sweep_dir,) = [f for f in (cli.folder / "results").iterdir() if f != seed]
    done = cli.run("resume", sweep_dir.name)
    assert done.returncode == 0, done.stdout + done.stderr
    frame = pd.read_csv(sweep_dir / "results.csv").set_index("trial")
    assert list(frame.index) == [f"trial-{i:04d}" for i in range(1, 7)]
    assert set(frame["state"]) == {"completed"}
    trials = study_trials(sweep_dir)
    seeded = [t.user_attrs.get("sweeper_seeded_from") for t in trials]
    # The seeding sweep's three trials are in the study once, before any of its own.
    assert [s for s in seeded if s] == [f"{seed.name}/trial-000{i}" for i in (1, 2, 3)]
    assert all(seeded[:3])
    assert named_once(trials) == list(frame.index)
    assert SweepState.load(sweep_dir).seeded_from[0]["trials"] == 3
