"""Reading the YAML users write (specs, manifests): PyYAML's safe loader, made strict.

PyYAML lets a later duplicate key win in silence, and builds aliases by reference, so a few
lines of nested aliases ("billion laughs") stand for billions of values that every later walk
over the data (validation, conversion, printing) visits. This loader refuses both, and makes a
parse error one line that names where it is.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

from sweeper.errors import SpecError

__all__ = ["MAX_NODES", "load_yaml"]

# The most values a document may stand for once its aliases are expanded: specs and manifests
# hold hundreds; a grid of choices written out in full, a few thousand.
MAX_NODES = 100_000


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (PyYAML keeps the last one)."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        # Only the keys written here: those a merge key (<<: *base) brings in may be overridden.
        written = [key for key, _ in node.value if key.tag != "tag:yaml.org,2002:merge"]
        seen: dict[Any, Node] = {}
        for key_node in written:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: construct_mapping says so below
                continue
            if duplicate:
                first = seen[key].start_mark.line + 1
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"a duplicate key {key!r} (first at line {first})",
                    key_node.start_mark,
                )
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


def _expanded_size(root: Node) -> int:
    """How many nodes ``root`` stands for with every alias expanded, memoised per node."""
    sizes: dict[int, int] = {}

    def size(node: Node) -> int:
        known = sizes.get(id(node))
        if known is not None:
            return known
        sizes[id(node)] = 1  # a recursive alias counts once, not forever
        total = 1
        if isinstance(node, SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        total = min(total, MAX_NODES + 1)
        sizes[id(node)] = total
        return total

    return size(root)


def _code(character: Any) -> str:
    number = character if isinstance(character, int) else ord(str(character)[:1] or "\0")
    return f"U+{number:04X}"


def load_yaml(text: str, *, file: str, what: str = "spec") -> Any:
    """The data of one YAML document.

    Raises:
        SpecError: For a syntax error, a duplicate key, more than one document, or aliases that
            expand beyond :data:`MAX_NODES` values.
    """
    try:
        loader = _StrictLoader(text)  # reads the whole text: refuses NUL and other controls
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            if _expanded_size(node) > MAX_NODES:
                raise SpecError(
                    f"{what} must stand for at most {MAX_NODES} values once its aliases are "
                    "expanded, got more",
                    file=file,
                    hint="write the values out, or use fewer nested aliases (*name)",
                )
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.reader.ReaderError as exc:
        raise SpecError(
            f"{what} must be valid YAML, got the character {_code(exc.character)} at position "
            f"{exc.position}",
            file=file,
            hint="YAML allows no control characters but tab and line breaks",
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "a syntax error"
        raise SpecError(f"{what} must be valid YAML, got {problem}{where}", file=file) from None
