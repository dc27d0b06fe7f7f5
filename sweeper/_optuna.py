"""An Optuna search whose study lives in the sweep's folder and whose trials keep their names.

Ray's ``OptunaSearch`` keeps its study in memory and pickles it into Tune's experiment state
every few seconds, so a driver killed in between loses what the sampler learned since, and a
restored Tune run may fall back to a fresh study. Here the study is written to an Optuna
journal file (``optuna.journal``) as each trial is asked and told, so a resumed sweep reloads
everything the sampler saw. Interrupted trials go back into the study's queue with their values
and their names.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ray.tune.search.optuna import OptunaSearch

from sweeper._journal import FINAL_STATES
from sweeper._space import NAME_KEY, point_name

if TYPE_CHECKING:
    import optuna

    from sweeper._journal import TrialRecord

__all__ = ["STUDY_FILE", "SweepOptunaSearch", "adopt_finished", "open_study"]

logger = logging.getLogger(__name__)

STUDY_FILE = "optuna.journal"
TRIAL_ATTR = "sweeper_trial"


def _storage(sweep_dir: Path) -> optuna.storages.BaseStorage:
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    return JournalStorage(JournalFileBackend(str(sweep_dir / STUDY_FILE)))


def _number(name: str) -> int:
    return int(name.rsplit("-", 1)[-1])


def open_study(
    sweep_dir: Path, sweep: str, restart: dict[str, dict[str, Any]], finished: set[str]
) -> tuple[optuna.storages.BaseStorage, int, int]:
    """The sweep's study storage, ready for this session.

    Trials the study still holds as running were interrupted: they are closed as failed (their
    partial results are not the configuration's worth) and go back into the queue with their
    values, with ``restart`` (name to values: halted trials, and failed ones to retry), so those
    trials run again under their own names. That includes trials the searcher had handed out
    but that never started. ``finished`` trials are never queued again.

    Returns:
        The storage, the number the next new trial gets, and how many trials the study holds.
    """
    import optuna
    from optuna.trial import TrialState

    storage = _storage(sweep_dir)
    try:
        study = optuna.load_study(study_name=sweep, storage=storage)
    except KeyError:
        return storage, 1, 0
    numbers = [0]
    restart = dict(restart)
    trials = study.get_trials(deepcopy=False)
    for trial in trials:
        name = trial.user_attrs.get(TRIAL_ATTR)
        if name:
            numbers.append(_number(name))
        if trial.state in (TrialState.RUNNING, TrialState.WAITING):
            storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
            if name and name not in finished:
                restart.setdefault(name, dict(trial.params))
    for name, values in sorted(restart.items()):
        study.enqueue_trial(values, user_attrs={TRIAL_ATTR: name}, skip_if_exists=False)
    return storage, max(numbers) + 1, len(trials)


def adopt_finished(
    sweep_dir: Path, sweep: str, records: dict[str, TrialRecord], metric: str
) -> list[str]:
    """Take what the study knows of trials the journal does not show ended.

    Tune tells the searcher a trial ended just before it tells sweeper's callbacks, so a driver
    killed in between leaves a trial finished in the study but running in the journal. Running
    it again would give the study two results for one trial; its result is taken instead.

    Returns:
        The names of the trials taken from the study.
    """
    import optuna
    from optuna.trial import TrialState

    if not (sweep_dir / STUDY_FILE).is_file():
        return []
    try:
        study = optuna.load_study(study_name=sweep, storage=_storage(sweep_dir))
    except KeyError:
        return []
    adopted = []
    for trial in study.get_trials(deepcopy=False):
        name = trial.user_attrs.get(TRIAL_ATTR)
        record = records.get(name or "")
        if record is None or record.state in FINAL_STATES:
            continue
        if trial.state not in (TrialState.COMPLETE, TrialState.PRUNED):
            continue
        ended = trial.datetime_complete.timestamp() if trial.datetime_complete else None
        at = ended or max(record.times.values(), default=0.0)
        if trial.intermediate_values:
            step = max(trial.intermediate_values)
            record.steps = max(record.steps, step)
            record.metrics.setdefault(metric, trial.intermediate_values[step])
        if trial.state == TrialState.COMPLETE and trial.value is not None:
            record.metrics[metric] = trial.value
        record.end_attempt(at)
        record.enter("completed" if trial.state == TrialState.COMPLETE else "stopped", at)
        adopted.append(name)
    return adopted


class SweepOptunaSearch(OptunaSearch):
    """Ray's Optuna searcher, with sweeper's trial names and outcomes.

    Args:
        first_number: The number of the next new trial (``trial-0001`` in a new sweep).
        early_stopped: Tune trial ids the scheduler stopped; told to Optuna as pruned.
        **kwargs: ``OptunaSearch``'s arguments.
    """

    def __init__(
        self, *, first_number: int = 1, early_stopped: set[str] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._next_number = first_number
        self._early_stopped = early_stopped if early_stopped is not None else set()

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        config = super().suggest(trial_id)
        if config is None:
            return None
        ot_trial = self._ot_trials[trial_id]
        name = ot_trial.user_attrs.get(TRIAL_ATTR)
        if name is None:
            name = point_name(self._next_number - 1)
            self._next_number += 1
            ot_trial.set_user_attr(TRIAL_ATTR, name)
        return {**config, NAME_KEY: name}

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        # Reports before the sweep's metric first appears hold other metrics only.
        if self.metric in result and trial_id in self._ot_trials:
            super().on_trial_result(trial_id, result)

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        from optuna.trial import TrialState

        ot_trial = self._ot_trials.get(trial_id)
        if ot_trial is None or trial_id in self._completed_trials:
            return
        value = (result or {}).get(self.metric)
        if error:
            state, value = TrialState.FAIL, None
        elif trial_id in self._early_stopped:
            # Optuna's samplers judge a pruned trial by its last intermediate value, reported
            # step by step in on_trial_result: what a stopped trial is worth.
            state, value = TrialState.PRUNED, None
        elif value is None:
            state = TrialState.FAIL
        else:
            state = TrialState.COMPLETE
        try:
            self._ot_study.tell(ot_trial, value, state=state)
        except Exception as exc:  # e.g. a NaN value: the trial counts as failed
            logger.warning("Optuna could not record %s: %s", trial_id, exc)
            self._ot_study.tell(ot_trial, None, state=TrialState.FAIL)
        self._completed_trials.add(trial_id)
