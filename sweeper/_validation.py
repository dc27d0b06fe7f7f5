"""Validation errors in sweeper's style, shared by the spec (``experiment.yml``) and the
settings (``sweeper.toml``): pydantic's first error turned into one line that names the file,
the field and the fix (``<field> must be <constraint>, got <value>``)."""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import PydanticCustomError

from sweeper.errors import SpecError

__all__ = ["Block", "invalid", "translate_error"]


def invalid(message: str, field: str | None = None, hint: str | None = None) -> Exception:
    """A validation error whose text sweeper chose (see :func:`translate_error`), not pydantic."""
    return PydanticCustomError("sweeper", message, {"field": field, "hint": hint})


class Block(BaseModel):
    """The base of every spec and settings block: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


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
    root: type[BaseModel],
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
