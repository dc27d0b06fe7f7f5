"""Reading ``experiment.yml``: YAML, pydantic validation and one-line error messages."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from sweeper._validation import translate_error
from sweeper._yaml import load_yaml
from sweeper.errors import SpecError
from sweeper.spec._model import FRAMEWORK_KEYS, Spec, requirement_problem, requirements_lines

if TYPE_CHECKING:
    from sweeper.frameworks.base import FrameworkAdapter

__all__ = ["load_spec", "parse_spec"]


def _frameworks_using(key: str) -> list[str]:
    from sweeper.frameworks.registry import available, get_adapter_class

    names = []
    for name in available():
        try:
            adapter = get_adapter_class(name)
            if key in adapter.uses or key == adapter.block_key():
                names.append(name)
        except Exception:  # a broken plug-in must not hide the user's real error
            continue
    return names


def _framework_options(
    adapter: type[FrameworkAdapter], key: str, value: Any, *, framework: str, file: str | None
) -> BaseModel:
    """The adapter's block ``key`` validated with its ``options`` model, or its defaults."""
    model = adapter.options
    assert model is not None
    if value is None:
        try:
            return model.model_validate({})
        except ValidationError:
            raise SpecError(
                f"{key} must be set for framework {framework}, got nothing", file=file, field=key
            ) from None
    # Validated under its key, so that errors name the whole field: caffe.solver.
    block: type[BaseModel] = create_model(
        "Block",
        __config__=ConfigDict(extra="forbid", protected_namespaces=()),
        **{key: (model, ...)},  # type: ignore[call-overload]
    )
    try:
        return getattr(block.model_validate({key: value}), key)
    except ValidationError as exc:
        raise translate_error(exc, file=file, root=block) from None


_SEVERAL_LEARNERS = "frameworks pytorch, python and command run a trial on several learners"
_SINGLE_LEARNER = {
    "caffe": "Caffe 1.0 trains on one machine only (it has no multi-node training); "
    "use resources.gpus for several GPUs of one machine",
    "tensorflow": "run a tf.distribute program as framework: command (each learner gets "
    "RANK, WORLD_SIZE, MASTER_ADDR...), or use framework pytorch",
}


def parse_spec(
    data: Any, *, file: str | None = None, base_dir: Path | None = None, source: Path | None = None
) -> Spec:
    """Validate an already-parsed spec mapping, including its framework's own checks.

    Raises:
        SpecError: The first rule the spec breaks.
    """
    from sweeper.frameworks.registry import get_adapter_class

    if not isinstance(data, dict):
        raise SpecError(
            f"the spec must be a mapping of keys, got {type(data).__name__}",
            file=file,
            hint="start with e.g. 'name: my-sweep'",
        )
    try:
        spec = Spec.model_validate(data)
    except ValidationError as exc:
        raise translate_error(exc, file=file, root=Spec) from None
    spec._source = source
    spec._label = file
    spec._base_dir = (base_dir or Path.cwd()).resolve()
    adapter = get_adapter_class(spec.framework, file=file)
    own = adapter.block_key()
    blocks = dict(spec.model_extra or {})  # the adapters' blocks (Spec rejects other keys)
    for key in (*FRAMEWORK_KEYS, *blocks):
        value = getattr(spec, key) if key in FRAMEWORK_KEYS else blocks[key]
        used = key in adapter.uses or key == own
        if key in adapter.uses and key in adapter.requires and value is None:
            raise SpecError(
                f"{key} must be set for framework {spec.framework}, got nothing",
                file=file,
                field=key,
            )
        if not used and value is not None:
            shown = value if isinstance(value, (str, list)) else f"a {key} block"
            users = ", ".join(sorted(_frameworks_using(key)))
            raise SpecError(
                f"{key} must not be set for framework {spec.framework}, got {shown!r}",
                file=file,
                field=key,
                hint=f"{key} belongs to framework {users}" if users else None,
            )
    if own is not None:
        spec._options = _framework_options(
            adapter, own, blocks.get(own), framework=spec.framework, file=file
        )
    learners = spec.resources.learners
    if learners > 1 and not adapter.distributed:
        raise SpecError(
            f"resources.learners must be 1 for framework {spec.framework}, got {learners}",
            file=file,
            field="resources.learners",
            hint=_SINGLE_LEARNER.get(spec.framework, _SEVERAL_LEARNERS),
        )
    adapter(spec).validate()
    if spec.schedule is not None:
        _check_schedule(spec, file)
    from sweeper.storage import is_s3_uri, parse_s3_uri

    # (what the message calls it, its field, the location)
    located = [
        (f"data.choice[{i}]", f"data.choice.{i}", v) if spec.data_choice else ("data", "data", v)
        for i, v in enumerate(spec.datasets)
    ]
    for label, key, value in [*located, ("results", "results", spec.results)]:
        if value and is_s3_uri(value):
            parse_s3_uri(value, file=file, field=key)
        elif value and "://" in value:
            raise SpecError(
                f"{label} must be a local path or an s3:// URI, got {value!r}",
                file=file,
                field=key,
                hint="S3-compatible stores (MinIO, IBM COS) use s3:// with storage.endpoint_url",
            )
    if isinstance(spec.requirements, str):
        _check_requirements_file(spec, file)
    for label, key, value in located:
        if not is_s3_uri(value) and not _exists(spec, value):
            raise SpecError(
                f"{label} must be an existing path, got {value!r}",
                file=file,
                field=key,
                hint=f"relative paths are relative to {spec.base_dir}",
            )
    if spec.mounts:
        note = _scan_mounts(spec)
        if note:
            spec._notes.append(note)
    return spec


# The frameworks whose training code runs in the trial's process, where ctx.save and ctx.load
# (the checkpoints a population-based schedule copies) reach Tune.
_SAVING_FRAMEWORKS = ("python", "pytorch")


def _check_schedule(spec: Spec, file: str | None) -> None:
    import importlib.util

    assert spec.schedule is not None
    method = spec.schedule.method
    if spec.framework not in _SAVING_FRAMEWORKS:
        raise SpecError(
            f"framework must be python or pytorch with schedule {method}, got {spec.framework}",
            file=file,
            field="schedule",
            hint="population-based training copies checkpoints that training code saves with "
            "ctx.save; a program run in its own process cannot",
        )
    missing = [m for m in ("GPy", "sklearn") if importlib.util.find_spec(m) is None]
    if method == "pb2" and missing:
        raise SpecError(
            f"schedule pb2 needs {' and '.join(missing)} installed, got none",
            file=file,
            field="schedule.method",
            hint="pip install 'sweeper[pbt]', or use method pbt",
        )


def _scan_mounts(spec: Spec) -> str | None:
    """Find, once, where the spec's mount paths are named (its command, the code folder's
    files, which trials then get rewritten copies of), and say so."""
    from sweeper._layout import NOT_CODE
    from sweeper._mounts import find_mentions, mentioned, mount_note

    where: dict[str, list[str]] = {}
    command = spec.command if isinstance(spec.command, str) else " ".join(spec.command or [])
    for path in sorted(mentioned(command, spec.mounts)):
        where.setdefault(path, []).append("the command")
    skip = set(NOT_CODE)
    if spec.source is not None and spec.source.parent == spec.base_dir:
        skip.add(spec.source.name)  # the spec (a manifest) is no code the trial reads
    files = find_mentions(spec.base_dir, spec.mounts, skip)
    spec._mount_files = frozenset(files)
    for rel, found in files.items():
        for path in sorted(found):
            where.setdefault(path, []).append(rel.as_posix())
    return mount_note(spec.mounts, where)


def _exists(spec: Spec, path: str) -> bool:
    try:
        return spec.resolve(path).exists()
    except (OSError, ValueError):  # a name too long for the filesystem, a NUL byte
        return False


def _check_requirements_file(spec: Spec, file: str | None) -> None:
    """A ``requirements`` file must exist and hold pip requirements (or pip options)."""
    assert isinstance(spec.requirements, str)
    path = spec.resolve(spec.requirements)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        raise SpecError(
            f"requirements file must be a readable file, got {spec.requirements!r}",
            file=file,
            field="requirements",
            hint=f"relative paths are relative to {spec.base_dir}",
        ) from None
    for line in requirements_lines(text):
        if line.startswith("-"):
            if line.split()[0] in ("-r", "-c", "--requirement", "--constraint"):
                raise SpecError(
                    f"requirements file lines must not include other files, got {line!r}",
                    file=file,
                    field="requirements",
                    hint="list their requirements in this file",
                )
            continue  # a pip option such as --index-url
        problem = requirement_problem(line)
        if problem:
            raise SpecError(
                f"requirements file lines must be pip requirements such as 'pkg==1.0', "
                f"got {line!r} ({problem})",
                file=file,
                field="requirements",
                hint=f"in {path}",
            )


def load_spec(
    path: str | Path, *, base_dir: Path | None = None, model_dir: Path | None = None
) -> Spec:
    """Read and validate an experiment spec file (or an FfDL/WML manifest).

    Relative paths in the spec (entry point, data, results) are resolved against ``base_dir``,
    by default the current working directory, where ``sweeper`` is run from. A manifest's are
    resolved against ``model_dir``, its model definition (as ``ffdl train MANIFEST MODEL_DIR``
    took it), by default the manifest's own folder.

    Raises:
        SpecError: If the file is missing, is not YAML, or breaks a rule of the spec.
    """
    path = Path(path)
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"spec file must exist, got {file!r}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"spec file must be readable UTF-8 text, got {exc}", file=file) from None
    data = load_yaml(text, file=file)
    from sweeper.errors import UsageError
    from sweeper.manifest import ManifestStore, convert_manifest, in_manifest_terms, is_manifest

    if model_dir is not None and not is_manifest(data):
        raise UsageError(
            f"MODEL_DIR must be left out for a sweeper spec, got {str(model_dir)!r} (command line)",
            hint="it is a manifest's model definition folder; a spec's paths are relative "
            "to where sweeper runs",
        )
    if model_dir is not None and not model_dir.is_dir():
        raise UsageError(
            f"MODEL_DIR must be an existing folder, got {str(model_dir)!r} (command line)",
            hint="the folder with the manifest's code, as ffdl train MANIFEST MODEL_DIR took it",
        )
    if is_manifest(data):
        # A manifest's command and files are relative to its model definition folder (the
        # manifest's own by default); its credentials stay out of the spec mapping.
        converted, store, notes = convert_manifest(data, file=file)
        folder = (model_dir or path.resolve().parent).resolve()
        try:
            spec = parse_spec(converted, file=file, base_dir=folder, source=path.resolve())
        except SpecError as error:
            raise in_manifest_terms(error, data) from None
        spec._manifest = store or ManifestStore(endpoint_url=None)
        spec._notes = [*notes, *spec._notes]
        return spec
    return parse_spec(data, file=file, base_dir=base_dir, source=path.resolve())
