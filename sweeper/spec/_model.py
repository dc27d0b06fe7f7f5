"""The experiment spec (``experiment.yml``) as pydantic models."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from sweeper._validation import Block, invalid
from sweeper.spec._blocks import EarlyStopping, Limits, Schedule
from sweeper.spec._conditions import ConditionalSpace, parse_condition
from sweeper.spec._iteration import check_initial_points
from sweeper.spec._objectives import Objective
from sweeper.spec._parameters import (
    DEFAULT,
    Choice,
    Constant,
    Parameter,
    ParameterError,
    grid_count,
    parse_parameter,
)
from sweeper.spec._search import MAX_TRIALS, Search

__all__ = [
    "EarlyStopping",
    "Limits",
    "MetricsSpec",
    "Objective",
    "Resources",
    "Schedule",
    "Search",
    "Spec",
    "StorageSpec",
]

# Keys only some frameworks read; each adapter names those it uses in ``FrameworkAdapter.uses``.
# An adapter's own block (``caffe:``) is not a field of Spec: see ``FrameworkAdapter.options``.
FRAMEWORK_KEYS = ("entrypoint", "command", "metrics")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# The search dimension a data choice makes (``data: {choice: [...]}``).
DATA_PARAM = "data"
MAX_CPUS = 100_000
MAX_GPUS = 10_000
MAX_LEARNERS = 1_000
MAX_MEMORY = 2**50  # 1 PiB
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b)?\s*$", re.IGNORECASE)


def requirement_problem(line: str) -> str | None:
    """Why ``line`` is not a PEP 508 requirement (``None``: it is one)."""
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        Requirement(line)
    except InvalidRequirement as exc:
        return str(exc).splitlines()[0]
    return None


def requirements_lines(text: str) -> list[str]:
    """The requirements of a requirements file: no comments, blank lines or continuations."""
    lines = []
    for raw in text.replace("\\\n", " ").splitlines():
        line = raw.split(" #", 1)[0].strip()
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


def parse_memory(value: Any) -> int:
    """Bytes from an integer or a string such as ``2GiB``, ``512MB`` or ``1Gb`` (1 GB = 1000 MB).

    Raises:
        ValueError: If ``value`` is not a size of at least one byte.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        size = value
    else:
        match = _MEMORY.match(value) if isinstance(value, str) else None
        if not match:
            raise ValueError(value)
        unit = (match.group(2) or "").lower()
        base = 1024 if "i" in unit else 1000
        power = "bkmgt".index(unit[0]) if unit else 0
        size = int(float(match.group(1)) * base**power)
    if size < 1 or size > MAX_MEMORY:
        raise ValueError(value)
    return size


class Resources(Block):
    """What one trial holds while it runs; Ray queues trials until it is free."""

    # Bounds no trial could be placed beyond: a larger number is a typo, not a machine.
    gpus: float = Field(0, ge=0, le=MAX_GPUS)
    cpus: float = Field(1, gt=0, le=MAX_CPUS)
    memory: Any = None
    # Processes that train one trial together (distributed data parallel): gpus, cpus and
    # memory are each learner's. See sweeper.execution._gang.
    learners: int = Field(1, ge=1, le=MAX_LEARNERS)
    # pack: every learner on one node (Ray's STRICT_PACK); spread: over nodes where it can
    # (Ray's SPREAD, which still packs onto one node when no other has room).
    placement: Literal["pack", "spread"] = "pack"

    @field_validator("gpus")
    @classmethod
    def _whole_gpus_above_one(cls, value: float) -> float:
        if value > 1 and value != int(value):
            raise invalid(
                f"resources.gpus must be a fraction up to 1 or a whole number, got {value:g}",
                hint="Ray shares a GPU between trials only below 1 GPU each",
            )
        return value

    @field_validator("memory")
    @classmethod
    def _memory_size(cls, value: Any) -> int | str | None:
        if value is not None:
            try:
                parse_memory(value)
            except ValueError:
                raise invalid(
                    "resources.memory must be a size from 1 byte to 1PiB such as 2GiB or "
                    f"512MB, got {value!r}"
                ) from None
        return value

    @property
    def memory_bytes(self) -> int | None:
        """``memory`` in bytes (one learner's), or ``None`` when the spec sets no limit."""
        return None if self.memory is None else parse_memory(self.memory)

    @property
    def trial_gpus(self) -> float:
        """The GPUs one trial holds: every learner's."""
        return self.gpus * self.learners

    @property
    def trial_cpus(self) -> float:
        """The CPUs one trial holds: every learner's."""
        return self.cpus * self.learners


class MetricsSpec(Block):
    """``metrics``: how a ``command`` trial's metrics reach sweeper (any mix of channels)."""

    prefix: str = Field("SWEEPER_METRICS ", min_length=1)
    file: str | None = None
    emetrics: bool = True
    regex: list[str] = Field(default_factory=list)
    # A folder of TensorBoard event files, relative to the trial's working directory; $VAR and
    # ${VAR} name the trial's environment ($JOB_STATE_DIR/logs/tb), expanded when it runs.
    tensorboard: str | None = None

    @field_validator("regex")
    @classmethod
    def _compiles(cls, patterns: list[str]) -> list[str]:
        for i, pattern in enumerate(patterns):
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                raise invalid(
                    f"metrics.regex[{i}] must be a regular expression, got {pattern!r} ({exc})",
                    f"metrics.regex.{i}",
                ) from None
            if not set(compiled.groupindex) - {"step"}:
                raise invalid(
                    f"metrics.regex[{i}] must name a metric group, got {pattern!r}",
                    f"metrics.regex.{i}",
                    r"write e.g. 'loss = (?P<loss>[0-9.e+-]+)'; a group named step sets the step",
                )
        return patterns

    @field_validator("tensorboard")
    @classmethod
    def _folder(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise invalid(
                f"metrics.tensorboard must be a folder, got {value!r}",
                "metrics.tensorboard",
                "e.g. tensorboard: $JOB_STATE_DIR/logs/tb, or leave it out",
            )
        return value


class StorageSpec(Block):
    """``storage``: the S3-compatible endpoint for this spec's ``s3://`` data and results.

    Overrides ``[s3]`` of ``sweeper.toml`` key by key. Credentials never go here: boto3's
    standard chain (environment, profile, instance role) provides them.
    """

    endpoint_url: str | None = None
    region: str | None = None
    addressing_style: Literal["auto", "path", "virtual"] | None = None


class Spec(Block):
    """A validated experiment spec.

    Build one with :func:`sweeper.spec.load_spec`, which also resolves paths and names the file in
    errors. ``space`` holds the parsed ``parameters``.

    Besides its fields, a spec may hold one top-level block per adapter that claims one
    (``caffe:``, a plug-in's ``mxnet:``): kept as written among the model's extras (so a dump
    round-trips), validated by the loader with the adapter's ``options`` model, and read as
    :attr:`framework_options`. Any other key is an error.
    """

    # Extra keys are adapters' blocks; _known_keys rejects the others before anything else.
    model_config = ConfigDict(extra="allow")

    name: str
    description: str = ""
    framework: str
    entrypoint: str | None = Field(None, min_length=1)
    command: str | list[str] | None = None
    metrics: MetricsSpec | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    search: Search
    resources: Resources = Field(default_factory=Resources)
    # A folder or s3:// URI, or {choice: [...]} of them: then a search dimension named data.
    data: str | dict[str, Any] | None = None
    results: str | None = None
    storage: StorageSpec | None = None
    early_stopping: EarlyStopping | None = None
    schedule: Schedule | None = None
    limits: Limits = Field(default_factory=Limits)
    requirements: list[str] | str | None = None
    # Absolute paths the program names that stand for the trial's data or results folder
    # (FfDL's /mnt/data/<bucket>); see sweeper._mounts.
    mounts: dict[str, Literal["data", "results", "job"]] = Field(default_factory=dict)
    # Where a trial's files go in an s3:// results store: sweeper's <sweep>/<trial>/, or, in
    # addition, FfDL's training-<id>/ (see sweeper.storage._sweep).
    results_layout: Literal["sweeper", "ffdl"] = "sweeper"

    _space: dict[str, Parameter] = PrivateAttr(default_factory=dict)
    _conditional: ConditionalSpace = PrivateAttr(default_factory=lambda: ConditionalSpace({}))
    _mutations: dict[str, Parameter] = PrivateAttr(default_factory=dict)
    _defaults: dict[str, Any] = PrivateAttr(default_factory=dict)
    _source: Path | None = PrivateAttr(default=None)
    _label: str | None = PrivateAttr(default=None)
    _manifest: Any = PrivateAttr(default=None)
    _notes: list[str] = PrivateAttr(default_factory=list)
    # The code folder's text files that name a mount path (found once, on load).
    _mount_files: frozenset[Path] = PrivateAttr(default_factory=frozenset)
    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)
    _options: BaseModel | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        # Before the fields: a misspelt key is a better error than the missing key it stands for.
        if not isinstance(data, dict):
            return data
        unknown = [str(key) for key in data if key not in cls.model_fields]
        if not unknown:
            return data
        from sweeper.frameworks.registry import block_keys

        claimed = block_keys()
        for key in unknown:
            if key not in claimed:
                allowed = cls.top_level_keys(claimed)
                close = difflib.get_close_matches(key, allowed, n=1)
                raise invalid(
                    f"keys must be one of {', '.join(allowed)}, got {key!r}",
                    key,
                    f"did you mean {close[0]!r}?" if close else "remove it",
                )
        return data

    @classmethod
    def top_level_keys(cls, blocks: Iterable[str]) -> list[str]:
        """The keys a spec may have: its fields, with the adapters' ``blocks`` after the
        framework-specific ones."""
        keys = list(cls.model_fields)
        at = keys.index("parameters")
        return [*keys[:at], *sorted(blocks), *keys[at:]]

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not _NAME.fullmatch(value):
            raise invalid(
                f"name must be 1-64 letters, digits, '.', '_' or '-', got {value!r}",
                hint="it names the sweep's folder and MLflow experiment",
            )
        return value

    @field_validator("requirements")
    @classmethod
    def _pip_requirements(cls, value: list[str] | str | None) -> list[str] | str | None:
        if isinstance(value, str):
            if not value.strip():
                raise invalid(
                    "requirements must be a list of pip requirements or a requirements file, "
                    "got ''",
                    hint="e.g. requirements: [scikit-learn==1.5.2] or requirements.txt",
                )
            return value  # a file: read and checked by load_spec, against the base folder
        for i, line in enumerate(value or []):
            problem = requirement_problem(line)
            if problem:
                raise invalid(
                    f"requirements[{i}] must be a pip requirement such as 'pkg==1.0', "
                    f"got {line!r} ({problem})",
                    f"requirements.{i}",
                )
        return value

    @field_validator("mounts", mode="before")
    @classmethod
    def _mount_paths(cls, value: Any) -> Any:
        if value is None:
            return {}
        if not isinstance(value, dict):
            return value  # pydantic's own message: must be a mapping
        paths = {}
        for raw in value:
            path = str(raw).rstrip("/")
            if (
                not isinstance(raw, str)
                or not path.startswith("/")
                or any(part in ("", ".", "..") for part in path.split("/")[1:])
            ):
                raise invalid(
                    f"mounts keys must be absolute paths below /, got {raw!r}",
                    f"mounts.{raw}",
                    "e.g. mounts: {/mnt/data/my_bucket: data}",
                )
            paths[path] = value[raw]
        return paths

    @model_validator(mode="after")
    def _mounts_have_folders(self) -> Spec:
        for path, target in self.mounts.items():
            if target == "data" and not self.data:
                raise invalid(
                    f"mounts.{path} must map to a folder the spec has, got data, and the spec has "
                    "no data",
                    f"mounts.{path}",
                    "set data: (a folder or s3:// URI), or map the path to results",
                )
        if self.results_layout == "ffdl" and not (self.results or "").startswith("s3://"):
            raise invalid(
                f"results_layout ffdl must come with s3:// results, got {self.results!r}",
                "results_layout",
                "set results: s3://BUCKET, or leave results_layout out",
            )
        return self

    @field_validator("data")
    @classmethod
    def _data_choice(cls, value: str | dict[str, Any] | None) -> str | dict[str, Any] | None:
        if not isinstance(value, dict):
            return value
        if set(value) != {"choice"}:
            extra = sorted(str(k) for k in value if k != "choice")
            raise invalid(
                f"data must be a folder, an s3:// URI or {{choice: [...]}} of them, got "
                f"{'keys ' + ', '.join(extra) if extra else 'no choice'}",
                "data",
                "write e.g. data: {choice: [s3://bucket/v1/, s3://bucket/v2/]}",
            )
        options = value["choice"]
        if not isinstance(options, list) or not options:
            raise invalid(
                f"data.choice must be a non-empty list of folders or s3:// URIs, got {options!r}",
                "data.choice",
            )
        for i, option in enumerate(options):
            if not isinstance(option, str) or not option.strip():
                raise invalid(
                    f"data.choice[{i}] must be a folder or an s3:// URI, got {option!r}",
                    f"data.choice.{i}",
                )
            if option in options[:i]:
                raise invalid(
                    f"data.choice must list each dataset once, got {option!r} twice",
                    f"data.choice.{i}",
                )
        return value

    @field_validator("parameters", mode="before")
    @classmethod
    def _mapping(cls, value: Any) -> Any:
        if value is None:
            return {}
        return value

    @model_validator(mode="after")
    def _parse_space(self) -> Spec:
        space: dict[str, Parameter] = {}
        conditions: dict[str, dict[str, tuple[Any, ...]]] = {}
        defaults: dict[str, Any] = {}
        if isinstance(self.data, dict):
            if DATA_PARAM in self.parameters:
                raise invalid(
                    f"parameters.{DATA_PARAM} must not be set when data is a choice, got "
                    f"{self.parameters[DATA_PARAM]!r}",
                    f"parameters.{DATA_PARAM}",
                    "the data choice is the data dimension; rename the parameter",
                )
            # First, so a grid runs one dataset's trials before the next one's.
            space[DATA_PARAM] = Choice(tuple(self.data["choice"]))
        for name, raw in self.parameters.items():
            if not isinstance(name, str) or not _PARAM_NAME.fullmatch(name):
                raise invalid(
                    f"parameter names must be identifiers (letters, digits, _), got {name!r}",
                    f"parameters.{name}",
                    "they become flags, environment variables and MLflow params",
                )
            try:
                space[name] = parse_parameter(name, raw)
                if isinstance(raw, dict) and "when" in raw:
                    conditions[name] = parse_condition(name, raw["when"])
                if isinstance(raw, dict) and DEFAULT in raw:
                    defaults[name] = raw[DEFAULT]
            except ParameterError as exc:
                raise invalid(exc.message, exc.field, exc.hint) from None
        try:
            conditional = ConditionalSpace(space, conditions)
        except ParameterError as exc:
            raise invalid(exc.message, exc.field, exc.hint) from None
        if self.search.method == "grid":
            for name, param in space.items():
                if grid_count(param) is None:
                    raise invalid(
                        f"parameters.{name} must have grid values for method grid, "
                        f"got {param.describe()}",
                        f"parameters.{name}",
                        "list them with {choice: [...]} or add a step",
                    )
            size = conditional.grid_count()
            if size > MAX_TRIALS:  # counted, never listed: a grid of 10**9 points is a typo
                counts = " x ".join(str(grid_count(p)) for p in self.dimensions_of(space).values())
                if conditions:
                    counts = "valid combinations of " + counts
                raise invalid(
                    f"the grid must have at most {MAX_TRIALS} points for method grid, "
                    f"got {size} ({counts})",
                    "parameters",
                    "use fewer values or a larger step, or method random or optuna with trials",
                )
            if self.search.trials is not None and self.search.trials != size:
                raise invalid(
                    f"search.trials must equal the grid's size {size} for method grid, "
                    f"got {self.search.trials}",
                    "search.trials",
                    "leave trials out for a grid",
                )
        if self.search.method == "optuna" and not self.dimensions_of(space):
            raise invalid(
                "parameters must include a search dimension for method optuna, got constants only",
                "parameters",
                "add e.g. lr: {loguniform: [1.0e-4, 1.0e-1]}",
            )
        for i, constraint in enumerate(self.search.parsed_constraints):
            if constraint.metric in space:
                raise invalid(
                    f"search.constraints[{i}] must name a reported metric, got parameter "
                    f"{constraint.metric!r} ({constraint.text!r})",
                    f"search.constraints.{i}",
                    f"constraints judge what trials report; narrow {constraint.metric}'s range "
                    "under parameters instead",
                )
        self._space = space
        self._conditional = conditional
        self._defaults = defaults
        check_initial_points(self)
        return self

    @model_validator(mode="after")
    def _schedule_rules(self) -> Spec:
        schedule = self.schedule
        if schedule is None:
            return self
        method = schedule.method
        if self.early_stopping is not None:
            raise invalid(
                f"schedule must not be set with early_stopping, got {method} and "
                f"{self.early_stopping.method}",
                "schedule",
                f"{method} is itself Tune's scheduler: it stops nothing early; keep one",
            )
        if self.search.method == "optuna":
            raise invalid(
                f"search.method must be grid or random with schedule {method}, got optuna",
                "search.method",
                f"{method}'s population starts from grid or random points; it then moves them "
                "itself",
            )
        if self.resources.learners > 1:
            raise invalid(
                f"resources.learners must be 1 with schedule {method}, got "
                f"{self.resources.learners}",
                "resources.learners",
                "population-based training copies one process's checkpoint",
            )
        self._check_ranking_objective(
            "schedule", schedule.metric, "the objective the population is ranked by"
        )
        mutations: dict[str, Parameter] = {}
        for name, raw in schedule.mutations.items():
            where = f"schedule.mutations.{name}"
            if name not in self._space:
                close = difflib.get_close_matches(str(name), list(self._space), n=1)
                raise invalid(
                    f"schedule.mutations must name parameters of the spec, got {name!r}",
                    where,
                    f"did you mean {close[0]!r}?" if close else "declare it under parameters",
                )
            if name in self._conditional.conditions or (name == DATA_PARAM and self.data_choice):
                raise invalid(
                    f"schedule.mutations.{name} must be a parameter every trial has, got "
                    f"{'the data choice' if name == DATA_PARAM else 'a conditional one'}",
                    where,
                    "a mutated value must exist in the trial it is copied into",
                )
            try:
                param = parse_parameter(name, raw)
            except ParameterError as exc:
                field = exc.field.replace("parameters.", "schedule.mutations.", 1)
                message = exc.message.replace("parameters.", "schedule.mutations.", 1)
                raise invalid(message, field, exc.hint) from None
            if isinstance(param, Constant):
                raise invalid(
                    f"{where} must be a search dimension such as {{loguniform: [...]}}, got "
                    f"{raw!r}",
                    where,
                    "it says which values the mutation may take",
                )
            if method == "pb2" and isinstance(param, Choice):
                raise invalid(
                    f"{where} must be a numeric range for method pb2, got {param.describe()}",
                    where,
                    "pb2 models continuous bounds; use method pbt for a choice",
                )
            mutations[name] = param
        self._mutations = mutations
        return self

    @property
    def mutations(self) -> dict[str, Parameter]:
        """``schedule.mutations``, parsed (empty without a schedule)."""
        return dict(self._mutations)

    @model_validator(mode="after")
    def _early_stopping_objective(self) -> Spec:
        if self.early_stopping is not None:
            self._check_ranking_objective(
                "early_stopping", self.early_stopping.metric, "the objective trials are stopped on"
            )
        return self

    def _check_ranking_objective(self, block: str, metric: str | None, what: str) -> None:
        """``<block>.metric``: required with several objectives, and one of them."""
        names = [o.name for o in self.search.objectives]
        if metric is None and self.search.multi_objective:
            raise invalid(
                f"{block}.metric must be set with several objectives, got nothing "
                f"(search.metrics: {', '.join(names)})",
                f"{block}.metric",
                f"name {what}, e.g. metric: {names[0]}",
            )
        if metric is not None and metric not in names:
            raise invalid(
                f"{block}.metric must be one of the search's objectives ({', '.join(names)}), "
                f"got {metric!r}",
                f"{block}.metric",
                f"{block} judges trials by one objective's value, in that objective's mode",
            )

    @property
    def stopping_objective(self) -> Objective:
        """The objective Tune's scheduler judges trials by (early stopping, or a schedule's
        population): the one its ``metric`` names, else the first (the only one, for a
        single objective)."""
        rule = self.early_stopping or self.schedule
        for objective in self.search.objectives:
            if rule is not None and objective.name == rule.metric:
                return objective
        return self.search.objectives[0]

    @property
    def conditional_space(self) -> ConditionalSpace:
        """Every parameter with its ``when`` condition: which are active for given values."""
        return self._conditional

    @property
    def datasets(self) -> list[str]:
        """Every data location the spec names: ``data``, or each of its choices."""
        if isinstance(self.data, dict):
            return list(self.data["choice"])
        return [self.data] if self.data else []

    @property
    def data_choice(self) -> bool:
        """Whether ``data`` is a search dimension (``{choice: [...]}``, named ``data``)."""
        return isinstance(self.data, dict)

    def dataset_for(self, params: dict[str, Any]) -> str | None:
        """The data location of a trial with ``params`` (``None``: the spec names none)."""
        if isinstance(self.data, dict):
            return str(params[DATA_PARAM]) if DATA_PARAM in params else None
        return self.data

    def training_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """``params`` as training code gets them: without a data choice's value (training
        code reads its data from ``ctx.data_dir``; flags and config files stay as before)."""
        if not self.data_choice:
            return dict(params)
        return {k: v for k, v in params.items() if k != DATA_PARAM}

    @staticmethod
    def dimensions_of(space: dict[str, Parameter]) -> dict[str, Parameter]:
        return {k: v for k, v in space.items() if not isinstance(v, Constant)}

    @property
    def space(self) -> dict[str, Parameter]:
        """Every parameter, parsed: constants and search dimensions."""
        return dict(self._space)

    @property
    def dimensions(self) -> dict[str, Parameter]:
        """The parameters that vary between trials."""
        return self.dimensions_of(self._space)

    @property
    def defaults(self) -> dict[str, Any]:
        """Each dimension's ``default``: the value earlier trials that lack it ran with."""
        return dict(self._defaults)

    @property
    def constants(self) -> dict[str, Any]:
        """The parameters every trial gets unchanged."""
        return {k: v.value for k, v in self._space.items() if isinstance(v, Constant)}

    @property
    def framework_options(self) -> Any:
        """The framework's own block, validated: an instance of its adapter's ``options`` model.

        ``None`` when the adapter has no ``options``, or for a spec that did not come through
        :func:`sweeper.spec.parse_spec`.
        """
        return self._options

    @property
    def source(self) -> Path | None:
        """The file this spec was read from, if any."""
        return self._source

    @property
    def manifest_store(self) -> Any:
        """For a spec converted from a manifest: its object store (with credentials), else None."""
        return self._manifest

    @property
    def notes(self) -> list[str]:
        """What the user should know about how the spec was read (not errors): what a
        manifest's conversion read differently, legacy bucket names reached path-style."""
        from sweeper.storage import legacy_note

        return [*self._notes, *(legacy_note(bucket) for bucket in self._legacy_buckets())]

    @property
    def mount_files(self) -> frozenset[Path]:
        """The files of the code folder (relative paths) that name one of :attr:`mounts`:
        each trial's working view holds rewritten copies of them (see ``sweeper._mounts``)."""
        return self._mount_files

    @property
    def uses_legacy_bucket(self) -> bool:
        """Whether an ``s3://`` data or results bucket has a legacy name (path-style only)."""
        return bool(self._legacy_buckets())

    def _legacy_buckets(self) -> list[str]:
        """The legacy-named buckets of ``data`` and ``results``, each once."""
        from sweeper.storage import is_s3_uri, parse_s3_uri

        uris = [parse_s3_uri(v) for v in (*self.datasets, self.results) if v and is_s3_uri(v)]
        return list(dict.fromkeys(uri.bucket for uri in uris if uri.legacy))

    @property
    def from_manifest(self) -> bool:
        """Whether this spec was converted from an FfDL/WML manifest."""
        return self._manifest is not None

    @property
    def label(self) -> str | None:
        """The spec's file as the user named it, for error messages."""
        return self._label

    @property
    def base_dir(self) -> Path:
        """The directory relative paths in the spec are resolved against."""
        return self._base_dir

    @property
    def sampler(self) -> str | None:
        """The Optuna sampler in use (``tpe`` by default for method optuna)."""
        if self.search.method != "optuna":
            return None
        return self.search.sampler or "tpe"

    def grid_size(self) -> int | None:
        """How many trials a grid search runs, or ``None`` for other methods."""
        if self.search.method != "grid":
            return None
        return self._conditional.grid_count()

    def trial_count(self) -> int:
        """How many trials the sweep runs."""
        grid = self.grid_size()
        return grid if grid is not None else int(self.search.trials or 0)

    def pip_requirements(self) -> list[str]:
        """The trials' pip requirements: the list, or the requirements file's lines."""
        if isinstance(self.requirements, str):
            return requirements_lines(self.resolve(self.requirements).read_text(encoding="utf-8"))
        return list(self.requirements or [])

    def results_folder(self, default: str) -> Path:
        """The local folder this spec's sweep folders go in: its ``results`` when that is a
        folder, else ``default`` (``[results] dir``). With ``s3://`` results, sweeps are
        written locally first, then synced."""
        from sweeper.storage import is_s3_uri

        local = self.results if self.results and not is_s3_uri(self.results) else None
        return self.resolve(local or default)

    def resolve(self, path: str) -> Path:
        """An absolute path for a path written in the spec."""
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else (self._base_dir / candidate).resolve()
