"""Named SQL queries, read from the `.sql` files beside the stores.

A file holds blocks that each start with a `-- name: <name>` line; a block's text runs to the
next name line. Comment lines after the name document the query and stay part of it; comment
lines at the end of a block (section headings) are dropped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from importlib import resources
from types import MappingProxyType

_NAME = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


def parse_queries(text: str) -> Mapping[str, str]:
    """Split the text of a `.sql` file into its named queries."""
    found: dict[str, str] = {}
    marks = list(_NAME.finditer(text))
    for mark, following in zip(marks, [*marks[1:], None], strict=True):
        end = following.start() if following is not None else len(text)
        name = mark.group(1)
        if name in found:
            raise ValueError(f"query {name!r} is defined twice")
        body = _trim(text[mark.end() : end])
        if not body:
            raise ValueError(f"query {name!r} is empty")
        found[name] = body
    return MappingProxyType(found)


def _trim(block: str) -> str:
    lines = block.strip().splitlines()
    while lines and (not lines[-1].strip() or lines[-1].lstrip().startswith("--")):
        lines.pop()
    return "\n".join(lines).strip()


@cache
def load_queries(filename: str) -> Mapping[str, str]:
    """The named queries of `queries/<filename>`, read once."""
    return parse_queries(read_sql(filename))


def read_sql(filename: str) -> str:
    """The whole text of `queries/<filename>` (e.g. the schema script)."""
    path = resources.files("gateway.store").joinpath("queries", filename)
    return path.read_text(encoding="utf-8")
