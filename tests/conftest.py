"""Shared fixtures: where the specification test vectors live."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
VECTORS = ROOT.parent / "shared" / "vectors"


def load_vector(relative: str) -> Any:
    """Read a vector file beside the project; skip when the vectors are not checked out."""
    path = VECTORS / relative
    if not path.exists():
        pytest.skip(f"test vectors not present: {relative}")
    if path.suffix == ".json":
        return json.loads(path.read_text(encoding="utf-8"))
    return path.read_text(encoding="utf-8")
