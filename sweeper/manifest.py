"""Training manifests of the original service (FfDL / Watson Machine Learning) as sweeper specs.

A manifest runs unchanged: its shell command line runs in a trial (through ``bash -c``, as the
service ran it), with the service's environment (``DATA_DIR``, ``RESULT_DIR``, ...), its
hyperparameters in ``config.json`` and its EMetrics as metrics. Without a
``hyper_parameters_optimization`` section it is a one-trial experiment; with one (WML
experiments' format) it becomes a sweep; WML's ``hyperband`` becomes a random search with
hyperband early stopping. Connection credentials are kept out of the converted spec: they travel
in :class:`ManifestStore`, which never prints them.
"""

from __future__ import annotations

import difflib
import math
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sweeper._mounts import FFDL_DATA_MOUNT, FFDL_JOB_MOUNT, FFDL_RESULTS_MOUNT
from sweeper._wml import definition_field, is_training_definition, to_manifest
from sweeper.errors import SpecError

__all__ = ["ManifestStore", "convert_manifest", "in_manifest_terms", "is_manifest"]

_TOP_KEYS = (
    "name", "description", "version", "gpus", "cpus", "memory", "gpu_type", "learners",
    "storage", "data_stores", "framework", "evaluation_metrics", "hyper_parameters_optimization",
)  # fmt: skip
_FRAMEWORK_KEYS = ("name", "version", "image_tag", "command")
# The framework names FfDL's lifecycle manager and WML knew; sweeper runs the command of each.
_FRAMEWORK_NAMES = (
    "caffe", "caffe2", "custom", "h2o3", "horovod", "keras", "mxnet", "pytorch", "pytorchmpi",
    "tensorflow", "torch",
)  # fmt: skip
_STORE_TYPES = ("s3_datastore", "mount_cos", "mount_volume")
_METRICS_TYPES = ("emetrics_file", "tensorboard", "logger")
# WML's optimizers and the sweeper search that does the same job.
_METHODS = {
    "random": {"method": "random"},
    "rbfopt": {"method": "optuna", "sampler": "gp"},  # both fit a surrogate of the objective
    "bandit": {"method": "optuna", "sampler": "tpe"},
    "hyperband": {"method": "random"},  # plus early_stopping: hyperband (see _hyperband)
}
# Method parameters of hyperband, named as Optuna's HyperbandPruner names them, and the
# early_stopping keys they set. WML's format gives no training length: max_resource is required.
_HYPERBAND_OPTIONS = {
    "max_resource": "max_steps",
    "min_resource": "grace_period",
    "reduction_factor": "reduction_factor",
}
_ONE_TRIAL_METRIC = "test_accuracy"  # the service's examples emit accuracy in the test group


@dataclass
class ManifestStore:
    """The object store a manifest's ``data_stores`` names; its secrets never print."""

    endpoint_url: str | None
    access_key: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)
    region: str | None = None

    def __getstate__(self) -> dict[str, Any]:
        # A spec travels to Ray and into Tune's saved state: its copies carry no credentials
        # (the sweep's store hands them to trials through Ray's object store instead).
        return {**self.__dict__, "access_key": None, "secret_key": None}

    @property
    def secrets(self) -> list[str]:
        """The values every message and file must not contain."""
        return [s for s in (self.access_key, self.secret_key) if s]


def is_manifest(data: Any) -> bool:
    """Whether a parsed YAML document is an FfDL manifest or a WML training definition rather
    than a sweeper spec."""
    return (
        isinstance(data, dict) and isinstance(data.get("framework"), dict)
    ) or is_training_definition(data)


def _check_keys(block: Any, allowed: tuple[str, ...], where: str, file: str | None) -> dict:
    if not isinstance(block, dict):
        raise SpecError(f"{where or 'the manifest'} must be a mapping, got {block!r}", file=file)
    for key in block:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            prefix = f"{where}." if where else ""
            raise SpecError(
                f"{where + ' ' if where else ''}keys must be one of {', '.join(allowed)}, "
                f"got {key!r}",
                file=file,
                field=f"{prefix}{key}",
                hint=f"did you mean {close[0]!r}?" if close else "remove it",
            )
    return block


def _mapping(value: Any, where: str, file: str | None) -> dict[str, Any]:
    """``value`` when it is a mapping (``None``: an empty one), else the error naming ``where``."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SpecError(f"{where} must be a mapping, got {value!r}", file=file, field=where)
    return value


def _text(value: Any, where: str, file: str | None) -> str | None:
    """``value`` as text when it is a string or a number (``None`` stays ``None``)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise SpecError(f"{where} must be a string, got {value!r}", file=file, field=where)
    return str(value)


def _name(raw: Any) -> str:
    text = re.sub(r"[^A-Za-z0-9._-]+", "-", str(raw or "manifest")).strip("-._")
    return (text or "manifest")[:64]


def _resources(manifest: dict, file: str | None) -> dict[str, Any]:
    learners = manifest.get("learners", 1)
    if learners is not None and (
        isinstance(learners, bool) or not isinstance(learners, int) or learners < 1
    ):
        raise SpecError(
            f"learners must be a whole number of at least 1, got {learners!r}",
            file=file,
            field="learners",
        )
    if manifest.get("gpu_type"):
        raise SpecError(
            f"gpu_type must be left out, got {manifest['gpu_type']!r}",
            file=file,
            field="gpu_type",
            hint="Ray gives trials any free GPU; choosing a GPU model is not supported",
        )
    resources: dict[str, Any] = {}
    for key in ("gpus", "cpus", "memory", "learners"):
        if manifest.get(key) is not None:
            resources[key] = manifest[key]
    if resources.get("learners") == 1:
        del resources["learners"]
    if resources.get("cpus") == 0:
        del resources["cpus"]  # the service read 0 as "no request"
    return resources


def _store(manifest: dict, file: str | None) -> tuple[dict[str, Any], ManifestStore | None]:
    """The spec's ``data``, ``results``, ``mounts`` and ``results_layout``, and the store."""
    stores = manifest.get("data_stores")
    if stores is None or stores == []:
        return {}, None
    if not isinstance(stores, list):
        raise SpecError(
            f"data_stores must be a list of one store, got {stores!r}",
            file=file,
            field="data_stores",
            hint="- {id: ..., type: s3_datastore, training_data: {container: BUCKET}, ...}",
        )
    if len(stores) != 1:
        raise SpecError(
            f"data_stores must list exactly one store, got {len(stores)}",
            file=file,
            field="data_stores",
            hint="the service used only the first; keep that one",
        )
    store = _check_keys(
        stores[0],
        ("id", "type", "training_data", "training_results", "connection"),
        "data_stores.0",
        file,
    )
    if store.get("type") not in _STORE_TYPES:
        raise SpecError(
            f"data_stores.0.type must be one of {', '.join(_STORE_TYPES)}, "
            f"got {store.get('type')!r}",
            file=file,
            field="data_stores.0.type",
        )
    where = "data_stores.0.connection"
    connection = _mapping(store.get("connection"), where, file)
    containers = {}
    for key, target in (("training_data", "data"), ("training_results", "results")):
        block = _mapping(store.get(key), f"data_stores.0.{key}", file)
        container = _text(block.get("container"), f"data_stores.0.{key}.container", file)
        if container:
            containers[target] = container
    if store.get("type") == "mount_volume":
        return _host_mount(containers, connection, file), None
    paths: dict[str, Any] = {target: f"s3://{name}" for target, name in containers.items()}
    # FfDL mounted the buckets there (mount_cos), and its users' files name those paths.
    mounts = {FFDL_DATA_MOUNT: "data", FFDL_RESULTS_MOUNT: "results"}
    mapped = {f"{at}/{containers[t]}": t for at, t in mounts.items() if t in containers}
    if mapped:
        paths["mounts"] = mapped
    if "results" in containers:
        paths["results_layout"] = "ffdl"
    return paths, ManifestStore(
        endpoint_url=_text(connection.get("auth_url"), f"{where}.auth_url", file),
        access_key=_text(connection.get("user_name"), f"{where}.user_name", file),
        secret_key=_text(connection.get("password"), f"{where}.password", file),
        region=_text(connection.get("region"), f"{where}.region", file),
    )


def _host_mount(containers: dict[str, str], connection: dict, file: str | None) -> dict[str, Any]:
    """A ``mount_volume`` store: folders ``<path>/<container>`` of the machine itself."""
    where = "data_stores.0.connection"
    kind = connection.get("type")
    if kind != "host_mount":
        raise SpecError(
            f"{where}.type must be host_mount for a mount_volume store, got {kind!r}",
            file=file,
            field=f"{where}.type",
        )
    root = _text(connection.get("path"), f"{where}.path", file)
    if not root or not root.startswith("/"):
        raise SpecError(
            f"{where}.path must be an absolute folder of this machine, got {root!r}",
            file=file,
            field=f"{where}.path",
            hint="the host folder FfDL mounted; its containers are folders in it",
        )
    return {target: f"{root.rstrip('/')}/{name}" for target, name in containers.items()}


_HOROVOD = re.compile(r"(^|[\s;&|/])(horovodrun|mpirun|mpiexec)(\s|$)")


def _framework(manifest: dict, file: str | None) -> tuple[dict[str, Any], list[str]]:
    framework = _check_keys(manifest["framework"], _FRAMEWORK_KEYS, "framework", file)
    name = framework.get("name")
    if name not in _FRAMEWORK_NAMES:
        close = difflib.get_close_matches(str(name), _FRAMEWORK_NAMES, n=1)
        raise SpecError(
            f"framework.name must be one of {', '.join(_FRAMEWORK_NAMES)}, got {name!r}",
            file=file,
            field="framework.name",
            hint=f"did you mean {close[0]!r}?" if close else "custom runs any command",
        )
    command = " ".join((_text(framework.get("command"), "framework.command", file) or "").split())
    if not command:
        raise SpecError(
            "framework.command must be set, got nothing", file=file, field="framework.command"
        )
    version = _version_note(str(name), _text(framework.get("version"), "framework.version", file))
    if name == "horovod" or _HOROVOD.search(command):
        raise SpecError(
            f"framework.command must not need Horovod or MPI, got {command!r}",
            file=file,
            field="framework.command",
            hint="Horovod (horovodrun, mpirun) is not supported; torch.distributed is: each "
            "learner gets NUM_LEARNERS, LEARNER_ID, MASTER_ADDR, MASTER_PORT, RANK and "
            "WORLD_SIZE (init_process_group('gloo' or 'nccl', init_method='env://'))",
        )
    caffe = _caffe_train(command)
    if caffe is not None:
        # Caffe's own adapter sets -gpu from the GPUs Ray assigned, and reads Caffe's log.
        block, notes = caffe
        return {"framework": "caffe", "caffe": block}, version + notes
    # The service ran the command line with a shell; so does sweeper, for manifests only.
    return {"framework": "command", "command": ["bash", "-c", command, "manifest"]}, version


# The distributions (or, for Caffe, the program) each framework name's version is read from.
_DISTRIBUTIONS = {
    "tensorflow": ("tensorflow", "tensorflow-cpu", "tensorflow-gpu"),
    "keras": ("keras",),
    "pytorch": ("torch",),
    "pytorchmpi": ("torch",),
    "torch": ("torch",),
    "mxnet": ("mxnet",),
    "h2o3": ("h2o",),
    "horovod": ("horovod",),
}
# A version at the start of framework.version: 1.5.0-py3, 1.5, 0.13.10-tf1.9.0-... (not
# latest, cpu, gpu-py3 or an image tag such as 0925mpi).
_VERSION = re.compile(r"(\d+)\.(\d+)(?:\.\d+)*(?=$|[-_])")


def _installed(name: str) -> tuple[str, str] | None:
    """The installed distribution (or program) of framework ``name`` and its version."""
    from importlib import metadata

    if name == "caffe":
        return _caffe_version()
    for distribution in _DISTRIBUTIONS.get(name, ()):
        try:
            return distribution, metadata.version(distribution)
        except metadata.PackageNotFoundError:
            continue
    return None


def _caffe_version() -> tuple[str, str] | None:
    import shutil
    import subprocess

    program = shutil.which("caffe")
    if program is None:
        return None
    try:
        out = subprocess.run(
            [program, "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.search(r"(\d+\.\d+(?:\.\d+)*)", out.stdout + out.stderr)
    return ("caffe", found.group(1)) if found else None


def _version_note(name: str, version: str | None) -> list[str]:
    """A note when ``framework.version`` asks for another release than this machine has."""
    match = _VERSION.match(version or "")
    if match is None or (name not in _DISTRIBUTIONS and name != "caffe"):
        return []  # latest, cpu, an image tag; custom and the rest name no library
    asked = f"{match.group(1)}.{match.group(2)}"
    installed = _installed(name)
    if installed is None:
        return [
            f"framework.version {version} asks for {name} {asked}, which this machine does not "
            f"have; the command runs with whatever it imports"
        ]
    distribution, present = installed
    if present.split(".")[:2] == asked.split("."):
        return []
    return [
        f"framework.version {version} asks for {name} {asked}; this machine has "
        f"{distribution} {present}, which code written for {asked} may not run on"
    ]


# `caffe train`'s flags (Caffe 1.0's tools/caffe.cpp) and what becomes of each in a manifest:
# kept in the spec's caffe block, or set by sweeper itself (with a note).
_CAFFE_KEPT = {"solver": "solver", "weights": "weights", "snapshot": "snapshot"}
_CAFFE_SET = {
    "gpu": "-gpu: the trial's GPUs are those Ray assigns it (resources.gpus)",
    "sigint_effect": "-sigint_effect: sweeper stops a trial with SIGINT after a snapshot",
    "sighup_effect": "-sighup_effect: sweeper asks for snapshots with SIGHUP",
    "iterations": "-iterations: caffe train ignores it; the solver's max_iter decides",
    "level": "-level: caffe test's flag; caffe train ignores it",
    "stage": "-stage: caffe test's flag; caffe train ignores it",
}


def _caffe_train(command: str) -> tuple[dict[str, str], list[str]] | None:
    """The caffe block of ``caffe train -solver S [flags]`` in any order (``-f v``, ``-f=v``,
    ``--f v``), and notes on the flags sweeper sets itself; ``None`` for any other command
    (anything else on the line: a pipe, a redirection, another program, an unknown flag)."""
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    if len(words) < 2 or Path(words[0]).name != "caffe" or words[1] != "train":
        return None
    block: dict[str, str] = {}
    notes: list[str] = []
    rest = words[2:]
    while rest:
        flag = rest.pop(0)
        if not flag.startswith("-"):
            return None
        name, equals, value = flag.lstrip("-").partition("=")
        if not equals:
            if not rest:
                return None
            value = rest.pop(0)
        if name in _CAFFE_KEPT:
            block[_CAFFE_KEPT[name]] = value
        elif name in _CAFFE_SET:
            notes.append(f"framework.command {_CAFFE_SET[name]} ({name} {value} left out)")
        else:
            return None
    if "solver" not in block:
        return None
    return block, notes


# Where FfDL's TensorBoard extractor looked when a manifest's evaluation_metrics names no folder.
_TENSORBOARD_DIR = "$JOB_STATE_DIR/logs/tb"


def _metrics(manifest: dict, framework: str, file: str | None) -> tuple[dict[str, Any], list[str]]:
    """The spec's ``metrics`` block for a manifest's ``evaluation_metrics``, and notes."""
    block = manifest.get("evaluation_metrics")
    if not block:
        return {}, []
    kind = block.get("type") if isinstance(block, dict) else None
    if kind not in _METRICS_TYPES:
        raise SpecError(
            f"evaluation_metrics.type must be one of {', '.join(_METRICS_TYPES)}, got {kind!r}",
            file=file,
            field="evaluation_metrics.type",
            hint="sweeper reads EMetrics ($LOG_DIR/evaluation-metrics.txt), "
            "val_dict_list.json and TensorBoard event files; other extractors are not supported",
        )
    if kind != "tensorboard":
        return {}, []
    folder = _text(block.get("in"), "evaluation_metrics.in", file) or _TENSORBOARD_DIR
    if framework != "command":
        return {}, [
            f"evaluation_metrics type tensorboard: {framework} trials report from "
            f"{framework}'s own log; {folder} is not read"
        ]
    # EMetrics stay on: the service read both, and a program may write either.
    return {"metrics": {"tensorboard": folder}}, []


def _dimension(entry: Any, index: int, file: str | None) -> tuple[str, Any]:
    where = f"hyper_parameters_optimization.hyper_parameters.{index}"
    if not isinstance(entry, dict) or not entry.get("name"):
        raise SpecError(f"{where} must be a mapping with a name, got {entry!r}", file=file,
                        field=where)  # fmt: skip
    name = str(entry["name"])
    for key in ("int_values", "double_values", "string_values"):
        if key in entry:
            values = entry[key]
            if not isinstance(values, list):
                raise SpecError(
                    f"{where}.{key} must be a list, got {values!r}",
                    file=file,
                    field=f"{where}.{key}",
                )
            return name, {"choice": list(values)}
    for key, kind in (("int_range", "int"), ("double_range", "uniform")):
        if key in entry:
            bounds = _mapping(entry[key], f"{where}.{key}", file)
            if bounds.get("power") is not None:
                raise SpecError(
                    f"{where}.{key}.power must be left out, got {bounds['power']!r}",
                    file=file,
                    field=f"{where}.{key}.power",
                    hint="list the values with *_values instead",
                )
            dimension: dict[str, Any] = {kind: [bounds.get("min_value"), bounds.get("max_value")]}
            if bounds.get("step") is not None:
                dimension["step"] = bounds["step"]
            return name, dimension
    raise SpecError(
        f"{where} must have one of int_values, double_values, string_values, int_range, "
        f"double_range, got {sorted(entry)}",
        file=file,
        field=where,
    )


def _number(value: Any) -> float | None:
    """A finite number from a method parameter's value, else ``None``."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _hyperband(options: dict[str, tuple[int, Any]], file: str | None) -> tuple[dict[str, Any], str]:
    """The ``early_stopping`` block of a WML hyperband method, and a note on how it was read."""
    where = "hyper_parameters_optimization.method.parameters"
    if "max_resource" not in options:
        raise SpecError(
            f"{where} must include max_resource for method hyperband, got nothing",
            file=file,
            field=where,
            hint="add {name: max_resource, int_value: N}, N the most steps (iterations or "
            "epochs) a trial reports; hyperband stops trials early against it",
        )
    block: dict[str, Any] = {"method": "hyperband"}
    for option, key in _HYPERBAND_OPTIONS.items():
        if option not in options:
            continue
        index, raw = options[option]
        value = _number(raw)
        if key == "reduction_factor":
            if value is None or not value > 1:
                raise SpecError(
                    f"{where}.{index} ({option}) must be a number > 1, got {raw!r}",
                    file=file,
                    field=f"{where}.{index}",
                )
            block[key] = int(value) if value == int(value) else value
            continue
        if value is None or value != int(value) or value < 1:
            raise SpecError(
                f"{where}.{index} ({option}) must be an integer >= 1, got {raw!r}",
                file=file,
                field=f"{where}.{index}",
            )
        block[key] = int(value)
    grace = block.get("grace_period", 1)
    if block["max_steps"] <= grace:
        index = options["max_resource"][0]
        raise SpecError(
            f"{where}.{index} (max_resource) must be greater than min_resource {grace}, "
            f"got {block['max_steps']}",
            file=file,
            field=f"{where}.{index}",
            hint="trials run min_resource steps before hyperband may stop them",
        )
    note = (
        f"method hyperband: a random search whose trials hyperband stops early, judged at the "
        f"steps their metrics report, up to max_resource {block['max_steps']} steps"
    )
    return block, note


def _search(
    manifest: dict, file: str | None
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None, list[str]]:
    """The search, parameters, early stopping (or ``None``) and notes of a manifest."""
    hpo = manifest.get("hyper_parameters_optimization")
    if not hpo:
        one = {"method": "grid", "metric": _ONE_TRIAL_METRIC, "mode": "max"}
        return one, {}, None, []
    hpo = _check_keys(hpo, ("method", "hyper_parameters"), "hyper_parameters_optimization",
                      file)  # fmt: skip
    method = _mapping(hpo.get("method"), "hyper_parameters_optimization.method", file)
    name = method.get("name")
    if name not in _METHODS:
        raise SpecError(
            f"hyper_parameters_optimization.method.name must be one of "
            f"{', '.join(_METHODS)}, got {name!r}",
            file=file,
            field="hyper_parameters_optimization.method.name",
        )
    where = "hyper_parameters_optimization.method.parameters"
    entries = method.get("parameters") or []
    if not isinstance(entries, list):
        raise SpecError(f"{where} must be a list, got {entries!r}", file=file, field=where)
    options: dict[str, tuple[int, Any]] = {}
    for index, entry in enumerate(entries):
        entry = _mapping(entry, f"{where}.{index}", file)
        value = next((v for k, v in entry.items() if str(k).endswith("_value")), None)
        options[str(entry.get("name"))] = (index, value)
    values = {key: value for key, (_, value) in options.items()}
    goal = values.get("maximize_or_minimize")
    if goal is not None and str(goal).lower() not in ("maximize", "minimize", "max", "min"):
        index = options["maximize_or_minimize"][0]
        raise SpecError(
            f"{where}.{index} (maximize_or_minimize) must be maximize or minimize, got {goal!r}",
            file=file,
            field=f"{where}.{index}",
        )
    steps = values.get("num_optimizer_steps")
    trials = 10 if steps is None else _number(steps)
    if trials is None or trials != int(trials) or trials < 1:
        index = options["num_optimizer_steps"][0]
        raise SpecError(
            f"{where}.{index} (num_optimizer_steps) must be an integer >= 1, got {steps!r}",
            file=file,
            field=f"{where}.{index}",
        )
    search = {
        **_METHODS[name],
        "metric": _text(values.get("objective"), f"{where} (objective)", file) or "accuracy",
        "mode": "min" if str(goal or "").lower().startswith("min") else "max",
        "trials": int(trials),
    }
    dimensions = hpo.get("hyper_parameters") or []
    if not isinstance(dimensions, list):
        raise SpecError(
            f"hyper_parameters_optimization.hyper_parameters must be a list, got {dimensions!r}",
            file=file,
            field="hyper_parameters_optimization.hyper_parameters",
        )
    parameters = dict(_dimension(entry, i, file) for i, entry in enumerate(dimensions))
    if name != "hyperband":
        return search, parameters, None, []
    early_stopping, note = _hyperband(options, file)
    return search, parameters, early_stopping, [note]


def convert_manifest(
    manifest: dict[str, Any], *, file: str | None = None
) -> tuple[dict[str, Any], ManifestStore | None, list[str]]:
    """Translate a manifest (or a WML training definition) into a sweeper spec mapping.

    Returns:
        The spec mapping (no secrets in it), the object store its ``data_stores`` names (or
        ``None``), and notes for the user about what was read differently.

    Raises:
        SpecError: For what sweeper cannot honour (``gpu_type``, Horovod, ...), or a
            hyperband method without ``max_resource``.
    """
    if is_training_definition(manifest):
        try:
            return _convert(to_manifest(manifest, file=file), file)
        except SpecError as error:
            raise _renamed(error, error.field and definition_field(error.field)) from None
    return _convert(manifest, file)


def _convert(
    manifest: dict[str, Any], file: str | None
) -> tuple[dict[str, Any], ManifestStore | None, list[str]]:
    _check_keys(manifest, _TOP_KEYS, "", file)
    search, parameters, early_stopping, notes = _search(manifest, file)
    paths, store = _store(manifest, file)
    framework, framework_notes = _framework(manifest, file)
    metrics, metrics_notes = _metrics(manifest, framework["framework"], file)
    spec: dict[str, Any] = {
        "name": _name(manifest.get("name")),
        "description": str(manifest.get("description") or ""),
        **framework,
        **metrics,
        "resources": _resources(manifest, file),
        "search": search,
        "parameters": parameters,
        **paths,
    }
    if early_stopping is not None:
        spec["early_stopping"] = early_stopping
    if spec["framework"] == "command":
        # FfDL's learners shared a volume at /job (their $JOB_STATE_DIR), and its users' code
        # names it: file:///job/<training id> rendezvous, master_node.txt.
        spec["mounts"] = {**spec.get("mounts", {}), FFDL_JOB_MOUNT: "job"}
    return spec, store, metrics_notes + framework_notes + notes


def _manifest_field(field: str, manifest: dict[str, Any]) -> str | None:
    """Where in ``manifest`` the converted spec's ``field`` came from (``None``: unknown)."""

    def part(block: Any, key: str, kind: type) -> Any:
        value = block.get(key) if isinstance(block, dict) else None
        return value if isinstance(value, kind) else kind()

    hpo = part(manifest, "hyper_parameters_optimization", dict)
    options: list[Any] = part(part(hpo, "method", dict), "parameters", list)
    dimensions: list[Any] = part(hpo, "hyper_parameters", list)

    def option(name: str) -> str:
        where = "hyper_parameters_optimization.method.parameters"
        for index, entry in enumerate(options):
            if isinstance(entry, dict) and entry.get("name") == name:
                return f"{where}.{index}"
        return where

    head, _, rest = field.partition(".")
    if head == "resources" and rest in ("gpus", "cpus", "memory", "learners"):
        return rest
    if field in ("name", "description"):
        return field
    if head == "metrics":
        return "evaluation_metrics.in"
    if field in ("command", "framework") or head == "caffe":
        return "framework.command"
    if head == "mounts" or field == "results_layout":
        return "data_stores.0"
    if field in ("data", "results"):
        key = "training_data" if field == "data" else "training_results"
        return f"data_stores.0.{key}.container"
    if field == "search.trials":
        return option("num_optimizer_steps")
    if field == "search.metric":
        return option("objective")
    if head == "parameters" and rest:
        name = rest.split(".")[0]
        for index, entry in enumerate(dimensions):
            if isinstance(entry, dict) and str(entry.get("name")) == name:
                return f"hyper_parameters_optimization.hyper_parameters.{index}"
        return "hyper_parameters_optimization.hyper_parameters"
    if head == "early_stopping":
        names = {v: k for k, v in _HYPERBAND_OPTIONS.items()}
        return option(names.get(rest, "max_resource"))
    if head == "search":
        return "hyper_parameters_optimization.method"
    return None


def in_manifest_terms(error: SpecError, manifest: dict[str, Any]) -> SpecError:
    """``error`` about the spec converted from ``manifest``, naming the manifest's own field."""
    if is_training_definition(manifest):
        error = in_manifest_terms(error, to_manifest(manifest, file=error.file))
        return _renamed(error, error.field and definition_field(error.field))
    return _renamed(error, error.field and _manifest_field(error.field, manifest))


def _renamed(error: SpecError, field: str | None) -> SpecError:
    """``error`` naming ``field`` instead of its own (itself when ``field`` is no other)."""
    if not field or field == error.field:
        return error
    message = error.message
    if error.field and message.startswith(error.field):
        message = field + message[len(error.field) :]
    return type(error)(message, file=error.file, field=field, hint=error.hint)
