"""The sweep's Optuna study on disk: what a resumed sweep finds in it and puts back."""

from __future__ import annotations

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from sweeper._journal import TrialRecord
from sweeper.search._optuna import (
    ORPHAN_ATTR,
    TRIAL_ATTR,
    _storage,
    adopt_finished,
    open_study,
)


def make_study(sweep_dir, states):
    """A study like a killed sweep leaves: one trial per state, named trial-0001, ..."""
    study = optuna.create_study(study_name="s", storage=_storage(sweep_dir), direction="maximize")
    space = {"x": FloatDistribution(0, 10)}
    for i, state in enumerate(states, 1):
        trial = study.ask(space)
        trial.set_user_attr(TRIAL_ATTR, f"trial-{i:04d}")
        trial.report(0.5 * i, step=1)
        if state == "complete":
            study.tell(trial, float(i))
        elif state == "pruned":
            study.tell(trial, state=TrialState.PRUNED)
    return study


def running(name):
    record = TrialRecord(name, {"x": 1.0}, attempts=1)
    record.enter("starting", 100.0)
    record.enter("running", 101.0)
    record.attempt_started = 100.0
    return record


def test_a_trial_the_study_finished_but_the_journal_did_not_is_taken_from_the_study(tmp_path):
    make_study(tmp_path, ["complete", "pruned", "running"])
    records = {name: running(name) for name in ("trial-0001", "trial-0002", "trial-0003")}
    adopted = adopt_finished(tmp_path, "s", records, ["score"])
    assert adopted == ["trial-0001", "trial-0002"]
    assert records["trial-0001"].state == "completed"
    assert records["trial-0001"].metrics["score"] == 1.0
    assert records["trial-0002"].state == "stopped" and records["trial-0002"].steps == 1
    assert records["trial-0003"].state == "running"  # interrupted: it runs again


def test_interrupted_trials_go_back_into_the_queue_with_their_values(tmp_path):
    study = make_study(tmp_path, ["complete", "running", "running"])
    values = {t.user_attrs[TRIAL_ATTR]: t.params for t in study.trials}
    storage, first, told = open_study(tmp_path, "s", {}, finished={"trial-0003"})
    assert (first, told) == (4, 3)
    reloaded = optuna.load_study(study_name="s", storage=storage)
    states = [t.state for t in reloaded.trials]
    assert states[:3] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.FAIL]
    (queued,) = reloaded.trials[3:]  # trial-0003 finished for good: only trial-0002 again
    assert queued.state == TrialState.WAITING
    asked = reloaded.ask({"x": FloatDistribution(0, 10)})  # as the searcher asks
    assert asked.user_attrs[TRIAL_ATTR] == "trial-0002"
    assert asked.params == values["trial-0002"]


def test_a_new_study_starts_at_trial_one(tmp_path):
    _, first, told = open_study(tmp_path, "fresh", {}, finished=set())
    assert (first, told) == (1, 0)


def test_a_trial_asked_but_never_named_is_settled_as_an_orphan(tmp_path):
    """The driver can stop between Optuna's ask and sweeper naming the trial (a kill -9):
    resuming settles that trial, and neither runs it again nor lets it shift the names."""
    study = make_study(tmp_path, ["complete", "running"])
    study.ask({"x": FloatDistribution(0, 10)})  # asked, never named
    storage, first, told = open_study(tmp_path, "s", {}, finished=set())
    assert (first, told) == (3, 3)
    trials = optuna.load_study(study_name="s", storage=storage).trials
    orphan = trials[2]
    assert orphan.state == TrialState.FAIL and orphan.user_attrs == {ORPHAN_ATTR: True}
    (queued,) = trials[3:]  # only trial-0002, interrupted, runs again
    assert queued.user_attrs == {TRIAL_ATTR: "trial-0002"}


def test_a_two_objective_trial_the_study_finished_is_taken_with_both_values(tmp_path):
    from sweeper.search._optuna import _storage

    study = optuna.create_study(
        study_name="s", storage=_storage(tmp_path), directions=["maximize", "minimize"]
    )
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    trial.set_user_attr(TRIAL_ATTR, "trial-0001")
    study.tell(trial, [0.9, 3.0])
    records = {"trial-0001": running("trial-0001")}
    assert adopt_finished(tmp_path, "s", records, ["acc", "size"]) == ["trial-0001"]
    assert records["trial-0001"].metrics == {"acc": 0.9, "size": 3.0}
    assert records["trial-0001"].state == "completed"
