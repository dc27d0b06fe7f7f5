"""The sweep's Optuna study: its distributions, its sampler, and its life in the sweep folder.

Ray's ``OptunaSearch`` keeps its study in memory and pickles it into Tune's experiment state
every few seconds, so a driver killed in between loses what the sampler learned since, and a
restored Tune run may fall back to a fresh study. Here the study is written to an Optuna
journal file (``optuna.journal``) as each trial is asked and told, so a resumed sweep reloads
everything the sampler saw. Interrupted trials go back into the study's queue with their values
and their names.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sweeper import _compat
from sweeper._format import describe_error
from sweeper._journal import FINAL_STATES, drop_torn_tail
from sweeper._layout import STUDY_FILE, trial_number
from sweeper.errors import SweepError
from sweeper.spec import Choice, IntRange, LogUniform, Parameter, Uniform

if TYPE_CHECKING:
    import optuna

    from sweeper._journal import TrialRecord
    from sweeper.search._seeds import Carried
    from sweeper.spec import Spec

__all__ = [
    "CONSTRAINED_SAMPLERS",
    "GPU_ATTR",
    "INITIAL_ATTR",
    "ORPHAN_ATTR",
    "SEED_ATTR",
    "STATE_ATTR",
    "TRIAL_ATTR",
    "DefineByRun",
    "StudyLog",
    "adopt_finished",
    "open_study",
    "optuna_distribution",
    "optuna_sampler",
    "seed_study",
    "study_name",
    "study_storage",
]

# The user attribute that carries a trial's sweeper name in the study.
TRIAL_ATTR = "sweeper_trial"
# Marks a trial Optuna created that never got a sweeper name (see open_study).
ORPHAN_ATTR = "sweeper_orphan"
# Where a trial a warm start carried into the study ran: "<sweep>/<trial>".
SEED_ATTR = "sweeper_seeded_from"
# Marks a queued trial that is one of the spec's initial_points.
INITIAL_ATTR = "sweeper_initial"
# What optuna-dashboard shows of a trial besides Optuna's own: its sweeper state and GPU time.
STATE_ATTR = "sweeper_state"
GPU_ATTR = "sweeper_gpu_seconds"
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


def study_storage(sweep_dir: Path) -> optuna.storages.BaseStorage:
    """The sweep's study file as Optuna's storage (what optuna-dashboard reads)."""
    return _storage(sweep_dir)


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
    # Every name the sweep gave, not only the study's: a study of a changed space holds only
    # the trials that fit it, and a new trial must not take a left-out one's name.
    numbers = [0, *(trial_number(name) for name in (*finished, *restart))]
    try:
        study = optuna.load_study(study_name=sweep, storage=storage)
    except KeyError:
        return storage, max(numbers) + 1, 0
    restart = dict(restart)
    trials = study.get_trials(deepcopy=False)
    initial: list[dict[str, Any]] = []
    for trial in trials:
        name = trial.user_attrs.get(TRIAL_ATTR)
        if name:
            numbers.append(trial_number(name))
        if trial.state == TrialState.WAITING and not name:
            continue  # an initial point still queued: Optuna asks for it first
        if trial.state in (TrialState.RUNNING, TrialState.WAITING):
            trial_id = _compat.optuna_trial_id(trial)
            if not name and trial.state == TrialState.RUNNING:
                # The driver stopped between Optuna's ask and sweeper naming the trial: Tune
                # never ran it. It is settled as failed, marked, and not run again (an
                # initial point is queued again).
                storage.set_trial_user_attr(trial_id, ORPHAN_ATTR, True)
                if trial.user_attrs.get(INITIAL_ATTR):
                    initial.append(dict(trial.system_attrs.get("fixed_params") or {}))
            storage.set_trial_state_values(trial_id, TrialState.FAIL)
            if name and name not in finished:
                restart.setdefault(name, dict(trial.params))
    for name, values in sorted(restart.items()):
        study.enqueue_trial(values, user_attrs={TRIAL_ATTR: name}, skip_if_exists=False)
    for values in initial:
        study.enqueue_trial(values, user_attrs={INITIAL_ATTR: True}, skip_if_exists=False)
    return storage, max(numbers) + 1, len(trials)


def study_name(sweep_dir: Path, sweep: str, spec: Spec) -> str:
    """The name of the study that holds the sweep's trials in ``spec``'s space.

    A sweep's study is named after the sweep. An extension that changes the space starts a
    study of its own, ``<sweep>.<space key>``, with the trials that fit the new space carried
    into it (:func:`seed_study`): Optuna's samplers read each trial with the distributions it
    was asked with, so old trials must be told again with the new ones.
    """
    path = sweep_dir / STUDY_FILE
    if not path.is_file():
        return sweep
    import optuna

    name = f"{sweep}.{space_key(spec)}"
    names = {s.study_name for s in optuna.get_all_study_summaries(_storage(sweep_dir))}
    return name if name in names else sweep


def space_key(spec: Spec) -> str:
    """A short fingerprint of the spec's search space: its dimensions as written."""
    import hashlib
    import json

    dims = {name: spec.parameters.get(name) for name in spec.dimensions}
    if spec.data_choice:
        dims["data"] = spec.data
    text = json.dumps(dims, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:10]


def seed_study(
    sweep_dir: Path,
    name: str,
    spec: Spec,
    carried: Sequence[Carried],
    initial: Sequence[dict[str, Any]] = (),
    *,
    replace: bool = False,
) -> int:
    """Make the study ``name`` hold ``carried`` trials, finished, and queue ``initial`` points.

    Carried trials are told with the spec's distributions (Optuna's ``add_trials``): a
    completed one with its objectives' values (and its constraints'), a stopped one as pruned
    at its last step. A trial of this very sweep keeps its name (the next new trial is
    numbered after it); another sweep's is marked with where it ran. ``initial`` points are
    queued (``enqueue_trial``) to be asked for before any new draw.

    Args:
        sweep_dir: The sweep's folder.
        name: The study's name.
        spec: The sweep's spec.
        carried: Earlier trials in the spec's space.
        initial: Points to run first (each maps some dimensions to values).
        replace: Start the study anew when it exists (an extension's new space made again).

    Returns:
        How many trials were carried.
    """
    import optuna
    from optuna.trial import TrialState

    storage = _storage(sweep_dir)
    objectives = spec.search.objectives
    directions: list[Literal["minimize", "maximize"]] = [
        "minimize" if o.mode == "min" else "maximize" for o in objectives
    ]
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # sweeper says what it seeded
    try:
        if replace:
            with contextlib.suppress(KeyError):
                optuna.delete_study(study_name=name, storage=storage)
        study = optuna.create_study(
            storage=storage, study_name=name, directions=directions, load_if_exists=True
        )
        # optuna-dashboard names the objectives from these ("Objective 0" otherwise).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names([o.name for o in objectives])
        space = spec.space
        constraints = spec.search.parsed_constraints
        trials = []
        for trial in carried:
            distributions = {k: optuna_distribution(space[k]) for k in trial.params}
            params = {k: _as_distribution(distributions[k], v) for k, v in trial.params.items()}
            attrs = {TRIAL_ATTR: trial.name} if trial.name else {SEED_ATTR: trial.source}
            violations = {c.text: c.violation(trial.metrics.get(c.metric)) for c in constraints}
            if trial.state == "completed":
                frozen = optuna.trial.create_trial(
                    params=params,
                    distributions=distributions,
                    values=trial.values,
                    user_attrs=attrs,
                    constraints=violations or None,
                )
            else:
                frozen = optuna.trial.create_trial(
                    state=TrialState.PRUNED,
                    params=params,
                    distributions=distributions,
                    user_attrs=attrs,
                    intermediate_values={trial.step: trial.last}
                    if trial.last is not None
                    else None,
                )
            trials.append(frozen)
        study.add_trials(trials)
        for point in initial:
            study.enqueue_trial(dict(point), user_attrs={INITIAL_ATTR: True}, skip_if_exists=False)
    finally:
        optuna.logging.set_verbosity(verbosity)
    return len(trials)


class StudyLog:
    """The study of a grid or random sweep (on the driver): each trial told as it ends, so that
    every sweep has a study for optuna-dashboard to show (an Optuna search has its own).

    A completed trial is told with its objectives' values, a stopped one as pruned, a failed
    one as failed; with its first objective's reported values as intermediate values (its
    learning curve), its name, state and GPU time as user attributes.
    """

    def __init__(self, sweep_dir: Path, name: str, spec: Spec) -> None:
        self.sweep_dir = sweep_dir
        self.name = name
        self.spec = spec
        self.curves: dict[str, dict[int, float]] = {}
        self._study: optuna.Study | None = None

    def reported(self, trial: str, step: int, value: float) -> None:
        """A value of the first objective the trial reported at ``step``."""
        if value == value and abs(value) != float("inf"):  # Optuna refuses NaN and inf
            self.curves.setdefault(trial, {})[step] = value

    def ended(self, record: TrialRecord) -> None:
        """Tell the study a trial that reached a final state (halted ones run again)."""
        import optuna
        from optuna.trial import TrialState

        if record.state not in ("completed", "stopped", "failed"):
            return
        if self._study is None:
            seed_study(self.sweep_dir, self.name, self.spec, [])
            self._study = optuna.load_study(study_name=self.name, storage=_storage(self.sweep_dir))
        space = self.spec.space
        params = self.spec.conditional_space.fit(record.params, self.spec.defaults) or {}
        distributions = {k: optuna_distribution(space[k]) for k in params}
        names = [o.name for o in self.spec.search.objectives]
        values = [
            float(v)
            for v in (record.metrics.get(n) for n in names)
            if isinstance(v, (int, float)) and v == v and abs(v) != float("inf")
        ]
        state = {"completed": TrialState.COMPLETE, "stopped": TrialState.PRUNED}.get(
            record.state, TrialState.FAIL
        )
        if state == TrialState.COMPLETE and len(values) < len(names):
            state = TrialState.FAIL  # Optuna takes no completed trial without its values
        curve = self.curves.pop(record.name, {})
        several = len(names) > 1
        frozen = optuna.trial.create_trial(
            state=state,
            params={k: _as_distribution(distributions[k], v) for k, v in params.items()},
            distributions=distributions,
            values=values if state == TrialState.COMPLETE else None,
            intermediate_values=None if several else curve,
            user_attrs={
                TRIAL_ATTR: record.name,
                STATE_ATTR: record.state,
                GPU_ATTR: round(record.gpu_seconds, 3),
            },
        )
        with contextlib.suppress(Exception):  # the study is for browsing: never the sweep's end
            self._study.add_trial(frozen)


def _as_distribution(distribution: Any, value: Any) -> Any:
    from optuna.distributions import FloatDistribution, IntDistribution

    if isinstance(distribution, FloatDistribution):
        return float(value)
    if isinstance(distribution, IntDistribution):
        return int(value)
    return value


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
