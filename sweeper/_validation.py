"""Validation errors in sweeper's style, shared by the spec (``experiment.yml``) and the
settings (``sweeper.toml``): pydantic's first error turned into one line that names the file,
the field and the fix (``<field> must be <constraint>, got <value>``)."""

from __future__ import annotations

import difflib
import functools
import types
import typing
import unicodedata
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from sweeper.errors import SpecError

__all__ = ["Block", "control_characters", "invalid", "translate_error"]


def invalid(message: str, field: str | None = None, hint: str | None = None) -> Exception:
    """A validation error whose text sweeper chose (see :func:`translate_error`), not pydantic."""
    return PydanticCustomError("sweeper", message, {"field": field, "hint": hint})


def control_characters(text: str) -> bool:
    """Whether ``text`` holds a control character other than tab, newline and carriage return:
    one that garbles a terminal, a log line or a file name."""
    return any(unicodedata.category(c) == "Cc" and c not in "\t\n\r" for c in text)


def _members(annotation: Any) -> tuple[Any, ...]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return tuple(m for arg in typing.get_args(annotation) for m in _members(arg))
    return (annotation,)


@functools.cache
def _number_kind(annotation: Any) -> str | None:
    """pydantic's error type for a field that takes a number and not a boolean, else ``None``."""
    members = _members(annotation)
    if bool in members:
        return None
    if float in members:
        return "float_type"
    if int in members:
        return "int_type"
    return None


class Block(BaseModel):
    """The base of every spec and settings block: unknown keys are errors, and so are numbers
    that are not finite, booleans where a number goes (pydantic takes ``true`` as 1) and text
    with control characters."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _plain_values(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, bool) and info.field_name is not None:
            annotation: Any = cls.model_fields[info.field_name].annotation
            kind = _number_kind(annotation)
            if kind is not None:
                raise PydanticCustomError(kind, "a number, not a boolean")
        texts = value if isinstance(value, list) else [value]
        if any(isinstance(text, str) and control_characters(text) for text in texts):
            raise PydanticCustomError("control_characters", "text without control characters")
        return value


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
    "list_type": "a list",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}


def _show(value: Any) -> str:
    """A value as the user wrote it in YAML or TOML: ``true``, not ``True``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return repr(value)


def _field(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


def _submodel(annotation: Any) -> type[BaseModel] | None:
    """The model an annotation holds: ``Model`` or ``Model | None``."""
    members = [m for m in _members(annotation) if m is not type(None)]
    if len(members) == 1 and isinstance(members[0], type) and issubclass(members[0], BaseModel):
        return members[0]
    return None


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model that holds the key at ``loc`` (for listing the keys it allows)."""
    current: type[BaseModel] | None = model
    for part in loc[:-1]:
        info = current.model_fields.get(str(part)) if current is not None else None
        current = _submodel(info.annotation) if info is not None else None
    return current


def _user_loc(model: type[BaseModel], loc: tuple[Any, ...]) -> tuple[tuple[Any, ...], int | None]:
    """``loc`` without the union members pydantic names in it (``command.str``), and the
    length of the part that ends at a union field (``None``: no union on the way)."""
    parts, out = list(loc), []
    current: type[BaseModel] | None = model
    union_end = None
    while parts:
        part = parts.pop(0)
        out.append(part)
        info = current.model_fields.get(str(part)) if current is not None else None
        if info is None:
            current = None
            continue
        members = [m for m in _members(info.annotation) if m is not type(None)]
        if len(members) > 1 and parts:
            parts.pop(0)  # the member pydantic tried: "str", "list[str]"
            union_end = len(out)
        current = _submodel(info.annotation)
    return tuple(out), union_end


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
    loc, union_end = _user_loc(root, tuple(first["loc"]))
    if union_end is not None:
        # A value no member of a union took: pydantic reports one error per member. One that
        # reaches inside the value (a list's item) tells what went wrong; else list the kinds.
        field_loc = loc[:union_end]
        tried = [(e, _user_loc(root, tuple(e["loc"]))[0]) for e in errors]
        tried = [(e, at) for e, at in tried if at[:union_end] == field_loc]
        inner = [(e, at) for e, at in tried if len(at) > union_end]
        if inner:
            first, loc = inner[0]
        elif all(e["type"] in _TYPES for e, _ in tried):
            kinds = " or ".join(dict.fromkeys(_TYPES[e["type"]] for e, _ in tried))
            return error_cls(
                f"{_field(field_loc)} must be {kinds}, got {_show(first.get('input'))}",
                file=file,
                field=_field(field_loc),
            )
    kind, value = first["type"], first.get("input")
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
        message = f"{field} must be one of {', '.join(choices)}, got {_show(value)}"
        close = difflib.get_close_matches(str(value), choices, n=1)
        hint = f"did you mean {close[0]!r}?" if close else None
    elif kind in _TYPES:
        message = f"{field} must be {_TYPES[kind]}, got {_show(value)}"
    elif kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        words = {
            "greater_than": ">",
            "greater_than_equal": ">=",
            "less_than": "<",
            "less_than_equal": "<=",
        }[kind]
        bound = next(iter(ctx.values()))
        if isinstance(bound, float) and bound.is_integer():
            bound = int(bound)  # a float field's bound: 10000, not 10000.0
        message = f"{field} must be {words} {bound}, got {_show(value)}"
    elif kind == "finite_number":
        message = f"{field} must be a finite number, got {_show(value)}"
    elif kind == "control_characters":
        message = f"{field} must not hold control characters, got {_show(value)}"
    elif kind == "string_too_short":
        message = f"{field} must not be empty, got {_show(value)}"
    else:
        message = f"{field} is invalid: {first['msg']}, got {_show(value)}"
    return error_cls(message, file=file, field=field, hint=hint)
