"""Reading ``experiment.yml``: YAML, pydantic validation and one-line error messages."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from sweeper.errors import SpecError
from sweeper.spec._model import FRAMEWORK_KEYS, Spec, requirement_problem, requirements_lines

__all__ = ["load_spec", "parse_spec", "translate_error"]

_TYPES = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "string_type": "a string",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}


def _field(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model that holds the key at ``loc`` (for listing the keys it allows)."""
    for part in loc[:-1]:
        info = model.model_fields.get(str(part))
        annotation = getattr(info, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model


def translate_error(
    error: ValidationError,
    *,
    file: str | None,
    root: type[BaseModel] = Spec,
    error_cls: type[SpecError] = SpecError,
) -> SpecError:
    """Turn pydantic's first error into a :class:`SpecError` in sweeper's message style."""
    errors = error.errors(include_url=False)
    # A misspelt required key shows up twice: as unknown and as missing. The unknown key, with
    # its did-you-mean, is the more useful of the two.
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    kind, loc, value = first["type"], tuple(first["loc"]), first.get("input")
    ctx = first.get("ctx") or {}
    field = _field(loc)
    hint = None
    if kind == "sweeper":
        return error_cls(
            first["msg"], file=file, field=ctx.get("field") or field, hint=ctx.get("hint")
        )
    if kind == "extra_forbidden":
        model = _model_at(root, loc)
        allowed = list(model.model_fields) if model else []
        key = str(loc[-1])
        close = difflib.get_close_matches(key, allowed, n=1)
        where = f"{_field(loc[:-1])} keys" if len(loc) > 1 else "keys"
        message = f"{where} must be one of {', '.join(allowed)}, got {key!r}"
        hint = f"did you mean {close[0]!r}?" if close else "remove it"
    elif kind == "missing":
        message = f"{field} must be set, got nothing"
    elif kind == "literal_error":
        expected = ctx.get("expected", "")
        choices = [c.strip(" '") for c in expected.replace(" or ", ", ").split(",")]
        message = f"{field} must be one of {', '.join(choices)}, got {value!r}"
        close = difflib.get_close_matches(str(value), choices, n=1)
        hint = f"did you mean {close[0]!r}?" if close else None
    elif kind in _TYPES:
        message = f"{field} must be {_TYPES[kind]}, got {value!r}"
    elif kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        words = {
            "greater_than": ">",
            "greater_than_equal": ">=",
            "less_than": "<",
            "less_than_equal": "<=",
        }[kind]
        bound = next(iter(ctx.values()))
        message = f"{field} must be {words} {bound}, got {value!r}"
    elif kind == "string_too_short":
        message = f"{field} must not be empty, got {value!r}"
    else:
        message = f"{field} is invalid: {first['msg']}, got {value!r}"
    return error_cls(message, file=file, field=field, hint=hint)


def _frameworks_using(key: str) -> list[str]:
    from frameworks.registry import available, get_adapter_class

    names = []
    for name in available():
        try:
            if key in get_adapter_class(name).uses:
                names.append(name)
        except Exception:  # a broken plug-in must not hide the user's real error
            continue
    return names


def parse_spec(
    data: Any, *, file: str | None = None, base_dir: Path | None = None, source: Path | None = None
) -> Spec:
    """Validate an already-parsed spec mapping, including its framework's own checks.

    Raises:
        SpecError: The first rule the spec breaks.
    """
    from frameworks.registry import get_adapter_class

    if not isinstance(data, dict):
        raise SpecError(
            f"the spec must be a mapping of keys, got {type(data).__name__}",
            file=file,
            hint="start with e.g. 'name: my-sweep'",
        )
    try:
        spec = Spec.model_validate(data)
    except ValidationError as exc:
        raise translate_error(exc, file=file) from None
    spec._source = source
    spec._label = file
    spec._base_dir = (base_dir or Path.cwd()).resolve()
    adapter = get_adapter_class(spec.framework, file=file)
    for key in FRAMEWORK_KEYS:
        value = getattr(spec, key)
        if key in adapter.uses and key in adapter.requires and value is None:
            raise SpecError(
                f"{key} must be set for framework {spec.framework}, got nothing",
                file=file,
                field=key,
            )
        if key not in adapter.uses and value is not None:
            shown = value if isinstance(value, (str, list)) else f"a {key} block"
            users = ", ".join(sorted(_frameworks_using(key)))
            raise SpecError(
                f"{key} must not be set for framework {spec.framework}, got {shown!r}",
                file=file,
                field=key,
                hint=f"{key} belongs to framework {users}" if users else None,
            )
    adapter(spec).validate()
    from sweeper.storage import is_s3_uri, parse_s3_uri

    for key in ("data", "results"):
        value = getattr(spec, key)
        if value and is_s3_uri(value):
            parse_s3_uri(value, file=file, field=key)
        elif value and "://" in value:
            raise SpecError(
                f"{key} must be a local path or an s3:// URI, got {value!r}",
                file=file,
                field=key,
                hint="S3-compatible stores (MinIO, IBM COS) use s3:// with storage.endpoint_url",
            )
    if isinstance(spec.requirements, str):
        _check_requirements_file(spec, file)
    if spec.data and not is_s3_uri(spec.data) and not spec.resolve(spec.data).exists():
        raise SpecError(
            f"data must be an existing path, got {spec.data!r}",
            file=file,
            field="data",
            hint=f"relative paths are relative to {spec.base_dir}",
        )
    return spec


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


def load_spec(path: str | Path, *, base_dir: Path | None = None) -> Spec:
    """Read and validate an experiment spec file.

    Relative paths in the spec (entry point, data, results) are resolved against ``base_dir``,
    by default the current working directory, where ``sweeper`` is run from.

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
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "a syntax error"
        raise SpecError(f"spec must be valid YAML, got {problem}{where}", file=file) from None
    from sweeper.manifest import ManifestStore, convert_manifest, is_manifest

    if is_manifest(data):
        # A manifest's command and files are relative to its own folder, the service's
        # "model definition"; its credentials stay out of the spec mapping.
        converted, store, _ = convert_manifest(data, file=file)
        spec = parse_spec(converted, file=file, base_dir=path.resolve().parent,
                          source=path.resolve())  # fmt: skip
        spec._manifest = store or ManifestStore(endpoint_url=None)
        return spec
    return parse_spec(data, file=file, base_dir=base_dir, source=path.resolve())
