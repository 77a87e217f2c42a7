"""Shared fixtures: where the specification test vectors live (tests/vectors, see ORIGIN.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

# Helper modules shared by test modules: their asserts get pytest's detailed messages too.
pytest.register_assert_rewrite("tests.unit.clientkit")

ROOT = Path(__file__).resolve().parents[1]
VECTORS = ROOT / "tests" / "vectors"


def load_vector(relative: str) -> Any:
    """Read a vector file of tests/vectors."""
    path = VECTORS / relative
    if path.suffix == ".json":
        return json.loads(path.read_text(encoding="utf-8"))
    return path.read_text(encoding="utf-8")
