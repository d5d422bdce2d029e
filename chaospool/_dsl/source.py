"""Reading an experiment's raw tree, remembering where every key and value came from.

The YAML is composed into a node tree with PyYAML's ``SafeLoader`` (so only plain data can be
built: tags such as ``!!python/object`` are refused, each with its own located error), then
constructed into plain Python data. Walking the node tree gives each key and value a location;
errors found later, during validation, are reported there.

A Python mapping has no positions: all of it is located at ``<mapping>:1:1``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from chaospool.errors import ErrorLocation

__all__ = ("MAPPING_FILE", "Loc", "Path", "Source", "format_path", "from_mapping", "read_yaml")

MAPPING_FILE = "<mapping>"
MAX_NODES = 100_000

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Loc:
    """A place in an input: file name (or ``<mapping>``, ``--set``) and 1-based line/column."""

    file: str
    line: int
    column: int


def format_path(path: Path) -> str:
    """``("method", 0, "at")`` -> ``method[0].at``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


@dataclass
class Source:
    """The raw tree of an experiment plus the location of each key and each value in it."""

    data: Any
    origin: Loc
    values: dict[Path, Loc] = field(default_factory=dict)
    keys: dict[Path, Loc] = field(default_factory=dict)

    def where(self, path: Path, *, key: bool = False) -> Loc:
        """The location of the value at ``path`` (or of its key): the nearest one known."""
        if key and path in self.keys:
            return self.keys[path]
        for end in range(len(path), 0, -1):
            loc = self.values.get(path[:end])
            if loc is not None:
                return loc
        return self.origin

    def relocate(self, path: Path, key: Loc, value: Loc) -> None:
        """The value at ``path`` now comes from elsewhere (an override replaced it)."""
        for table in (self.values, self.keys):
            for known in [p for p in table if p[: len(path)] == path]:
                del table[known]
        self.keys[path] = key
        self.values[path] = value


def from_mapping(mapping: Mapping[str, Any]) -> Source:
    """A Source for a Python mapping: a deep copy (overrides never touch the caller's data)."""
    return Source(data=copy.deepcopy(dict(mapping)), origin=Loc(MAPPING_FILE, 1, 1))


# Tags SafeLoader knows how to build (plain data), plus the merge key ``<<``.
_SAFE_TAGS = frozenset(t for t in yaml.SafeLoader.yaml_constructors if t is not None) | {
    "tag:yaml.org,2002:merge"
}


def read_yaml(text: str, file: str) -> tuple[Source | None, list[ErrorLocation]]:
    """Parse YAML text; on failure return no Source and every located problem found."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return Source(None, Loc(file, 1, 1)), []
        walker = _Walker(loader, file)
        walker.walk(node, ())
        if walker.errors:
            return None, walker.errors
        data = loader.construct_document(node)
        return Source(data, Loc(file, 1, 1), walker.values, walker.keys), []
    except yaml.YAMLError as error:
        return None, [_yaml_error(error, file)]
    finally:
        loader.dispose()


def _yaml_error(error: yaml.YAMLError, file: str) -> ErrorLocation:
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    problem = getattr(error, "problem", None) or str(error)
    context = getattr(error, "context", None)
    message = f"invalid YAML: {context + ': ' if context else ''}{problem}"
    return ErrorLocation("", line, column, message, file)


def _loc(node: yaml.Node, file: str) -> Loc:
    return Loc(file, node.start_mark.line + 1, node.start_mark.column + 1)


class _Walker:
    """Records the location of every key and value; finds unsafe tags and duplicate keys."""

    def __init__(self, loader: yaml.SafeLoader, file: str) -> None:
        self.loader = loader
        self.file = file
        self.values: dict[Path, Loc] = {}
        self.keys: dict[Path, Loc] = {}
        self.errors: list[ErrorLocation] = []
        self._stack: set[int] = set()  # node ids being walked: guards recursive aliases
        self._visits = 0

    def walk(self, node: yaml.Node, path: Path) -> None:
        if id(node) in self._stack:
            # An alias inside the very node it names: the data would contain itself, which no
            # experiment value can be (and which would recurse without end further on).
            self._error(node, path, "this YAML alias refers to a node that contains it: "
                                    "an experiment cannot hold a value that contains itself")
            return
        if self._visits > MAX_NODES:
            return
        self._visits += 1
        if self._visits > MAX_NODES:
            # Aliases can make a tiny file expand exponentially ("billion laughs"): stop early.
            self._error(
                node,
                path,
                f"the document has more than {MAX_NODES} values (counting "
                f"each alias use): too large for an experiment",
            )
            return
        self._check_tag(node, path)
        self.values.setdefault(path, _loc(node, self.file))
        self._stack.add(id(node))
        for child_path, child in self._children(node, path):
            self.walk(child, child_path)
        self._stack.discard(id(node))

    def _children(self, node: yaml.Node, path: Path) -> Iterator[tuple[Path, yaml.Node]]:
        if isinstance(node, yaml.SequenceNode):
            yield from (((*path, i), item) for i, item in enumerate(node.value))
        elif isinstance(node, yaml.MappingNode):
            seen: dict[Any, Loc] = {}
            for key_node, value_node in node.value:
                key = self._key(key_node, path)
                if key is _MERGE:
                    self.walk(value_node, path)  # merged keys sit in this very mapping
                    continue
                if key is None:
                    continue
                self._note_key(key, key_node, path, seen)
                yield (*path, key), value_node

    def _note_key(self, key: str | int, node: yaml.Node, path: Path, seen: dict[Any, Loc]) -> None:
        loc = _loc(node, self.file)
        if key in seen:
            first = seen[key]
            self._error(node, (*path, key), f"duplicate key {key!r} (first at line {first.line})")
        seen[key] = loc
        self.keys.setdefault((*path, key), loc)

    def _key(self, node: yaml.Node, path: Path) -> Any:
        if node.tag == "tag:yaml.org,2002:merge":
            return _MERGE
        if not isinstance(node, yaml.ScalarNode) or node.tag not in _SAFE_TAGS:
            self._error(node, path, "a key must be a plain scalar such as a name")
            return None
        key = self.loader.construct_object(node)
        # Keys that are neither text nor integers cannot be addressed by a path; they are
        # reported by the validator as unknown keys under their text.
        return key if isinstance(key, str | int) and not isinstance(key, bool) else str(key)

    def _check_tag(self, node: yaml.Node, path: Path) -> None:
        if node.tag not in _SAFE_TAGS:
            self._error(
                node,
                path,
                f"YAML tag {_short_tag(node.tag)!r} is not allowed: an experiment holds plain "
                f"data only (mappings, lists, strings, numbers, booleans, null)",
            )

    def _error(self, node: yaml.Node, path: Path, message: str) -> None:
        loc = _loc(node, self.file)
        where = format_path(path)
        self.errors.append(ErrorLocation(where, loc.line, loc.column, message, loc.file))


_MERGE = object()


def _short_tag(tag: str) -> str:
    return "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml.org") else tag
