"""YAML (and JSON) loading that remembers the line of every key and item, for error messages."""

from __future__ import annotations

from typing import Any

import yaml

Path_ = tuple[str | int, ...]


class Located:
    """A loaded document plus the 1-based line of every key path in it."""

    def __init__(self, value: Any, lines: dict[Path_, int]) -> None:
        self.value = value
        self.lines = lines

    def line(self, path: Path_) -> int:
        """The line of `path`, or of its nearest ancestor that has one (1 when none)."""
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), 1)


class _Builder(yaml.SafeLoader):
    pass


def _build(loader: _Builder, node: yaml.Node, path: Path_, lines: dict[Path_, int]) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                key = str(key)
            lines[(*path, key)] = key_node.start_mark.line + 1
            out[key] = _build(loader, value_node, (*path, key), lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(loader, item, (*path, i), lines) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def load(text: str, name: str = "<string>") -> Located:
    """Parse one YAML/JSON document; raises `yaml.YAMLError` (with a mark) when malformed."""
    loader = _Builder(text)
    loader.name = name
    try:
        node = loader.get_single_node()
        lines: dict[Path_, int] = {}
        value = None if node is None else _build(loader, node, (), lines)
    finally:
        loader.dispose()
    return Located(value, lines)
