"""The sweep's Optuna study: its distributions, its sampler, and its life in the sweep folder.

Ray's ``OptunaSearch`` keeps its study in memory and pickles it into Tune's experiment state
every few seconds, so a driver killed in between loses what the sampler learned since, and a
restored Tune run may fall back to a fresh study. Here the study is written to an Optuna
journal file (``optuna.journal``) as each trial is asked and told, so a resumed sweep reloads
everything the sampler saw. Interrupted trials go back into the study's queue with their values
and their names.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeper import _compat
from sweeper._format import describe_error
from sweeper._journal import FINAL_STATES, drop_torn_tail
from sweeper._layout import STUDY_FILE, trial_number
from sweeper.errors import SweepError
from sweeper.spec import Choice, IntRange, LogUniform, Parameter, Uniform

if TYPE_CHECKING:
    import optuna

    from sweeper._journal import TrialRecord
    from sweeper.spec import Spec

__all__ = [
    "CONSTRAINED_SAMPLERS",
    "ORPHAN_ATTR",
    "TRIAL_ATTR",
    "DefineByRun",
    "adopt_finished",
    "open_study",
    "optuna_distribution",
    "optuna_sampler",
]

# The user attribute that carries a trial's sweeper name in the study.
TRIAL_ATTR = "sweeper_trial"
# Marks a trial Optuna created that never got a sweeper name (see open_study).
ORPHAN_ATTR = "sweeper_orphan"
# Optuna's samplers that read a trial's constraints (Trial.set_constraint) and steer away
# from infeasible regions; the others ignore them.
CONSTRAINED_SAMPLERS = ("tpe", "gp", "nsgaii", "nsgaiii")


def _storage(sweep_dir: Path) -> optuna.storages.BaseStorage:
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    path = sweep_dir / STUDY_FILE
    try:
        drop_torn_tail(path)  # a killed driver's, or a full disk's
        # Optuna replays the whole journal here.
        return JournalStorage(JournalFileBackend(str(path)))
    except Exception as exc:
        raise SweepError(
            f"the sweep's Optuna study must be readable, got {describe_error(exc)} ({path}); "
            "restore the file from a copy, or start the sweep anew"
        ) from None


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
            numbers.append(trial_number(name))
        if trial.state in (TrialState.RUNNING, TrialState.WAITING):
            trial_id = _compat.optuna_trial_id(trial)
            if not name and trial.state == TrialState.RUNNING:
                # The driver stopped between Optuna's ask and sweeper naming the trial: Tune
                # never ran it. It is settled as failed, marked, and not run again.
                storage.set_trial_user_attr(trial_id, ORPHAN_ATTR, True)
            storage.set_trial_state_values(trial_id, TrialState.FAIL)
            if name and name not in finished:
                restart.setdefault(name, dict(trial.params))
    for name, values in sorted(restart.items()):
        study.enqueue_trial(values, user_attrs={TRIAL_ATTR: name}, skip_if_exists=False)
    return storage, max(numbers) + 1, len(trials)


def adopt_finished(
    sweep_dir: Path, sweep: str, records: dict[str, TrialRecord], metrics: list[str]
) -> list[str]:
    """Take what the study knows of trials the journal does not show ended.

    Tune tells the searcher a trial ended just before it tells sweeper's callbacks, so a driver
    killed in between leaves a trial finished in the study but running in the journal. Running
    it again would give the study two results for one trial; its result is taken instead.

    Args:
        sweep_dir: The sweep's folder.
        sweep: The study's name.
        records: The journal's trials, updated in place.
        metrics: The objectives' names, in the study's order.

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
    adopted: list[str] = []
    for trial in study.get_trials(deepcopy=False):
        name = str(trial.user_attrs.get(TRIAL_ATTR) or "")
        record = records.get(name)
        if record is None or record.state in FINAL_STATES:
            continue
        if trial.state not in (TrialState.COMPLETE, TrialState.PRUNED):
            continue
        ended = trial.datetime_complete.timestamp() if trial.datetime_complete else None
        at = ended or max(record.times.values(), default=0.0)
        if trial.intermediate_values:  # single-objective only (Optuna's rule)
            step = max(trial.intermediate_values)
            record.steps = max(record.steps, step)
            record.metrics.setdefault(metrics[0], trial.intermediate_values[step])
        if trial.state == TrialState.COMPLETE and trial.values:
            record.metrics.update(zip(metrics, trial.values, strict=False))
        record.end_attempt(at)
        record.enter("completed" if trial.state == TrialState.COMPLETE else "stopped", at)
        adopted.append(name)
    return adopted


def optuna_distribution(param: Parameter) -> optuna.distributions.BaseDistribution:
    """Optuna's distribution for one of the spec's search dimensions."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    if isinstance(param, Choice):
        return CategoricalDistribution(list(param.values))
    if isinstance(param, Uniform):
        return FloatDistribution(param.low, param.high, step=param.step)
    if isinstance(param, LogUniform):
        return FloatDistribution(param.low, param.high, log=True)
    if isinstance(param, IntRange):
        return IntDistribution(param.low, param.high, log=param.log, step=param.step)
    raise TypeError(param)


def optuna_sampler(name: str, seed: int | None) -> optuna.samplers.BaseSampler:
    """The Optuna sampler a spec's ``search.sampler`` names, seeded with ``seed``.

    Constraints need no argument here: the searcher sets each finished trial's constraint
    values (``Trial.set_constraint``, Optuna 5's way), which the samplers of
    :data:`CONSTRAINED_SAMPLERS` read.
    """
    import optuna

    from sweeper.search import _samplers

    samplers: dict[str, Any] = {
        "tpe": optuna.samplers.TPESampler,
        "cmaes": optuna.samplers.CmaEsSampler,
        "random": optuna.samplers.RandomSampler,
        "gp": optuna.samplers.GPSampler,
        "qmc": optuna.samplers.QMCSampler,
        "nsgaii": _samplers.NSGAIISampler,
        "nsgaiii": _samplers.NSGAIIISampler,
    }
    return samplers[name](seed=seed)


class DefineByRun:
    """The spec's space as an Optuna define-by-run function (Ray's ``OptunaSearch`` takes a
    callable ``space``): parents are suggested before children, and a parameter its
    condition leaves inactive is never suggested, so Optuna's samplers see the conditional
    space itself (what ``trial.suggest_*`` inside an ``if`` gives a plain Optuna user).

    A class rather than a closure: Tune pickles the searcher with its space.
    """

    def __init__(self, spec: Spec) -> None:
        self.constants = spec.constants
        self.conditional = spec.conditional_space

    def __call__(self, trial: optuna.Trial) -> None:
        self.conditional.sample(lambda name, param: _suggest(trial, name, param), self.constants)


def _suggest(trial: optuna.Trial, name: str, param: Parameter) -> Any:
    # The public suggest_* calls: Ray's OptunaSearch captures the values through them.
    if isinstance(param, Choice):
        return trial.suggest_categorical(name, list(param.values))
    if isinstance(param, Uniform):
        return trial.suggest_float(name, param.low, param.high, step=param.step)
    if isinstance(param, LogUniform):
        return trial.suggest_float(name, param.low, param.high, log=True)
    if isinstance(param, IntRange):
        return trial.suggest_int(name, param.low, param.high, step=param.step, log=param.log)
    raise TypeError(param)
