"""`gateway check --against`: schema edits in a real temporary git repository, and the verdicts."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from gateway.schemas.compat import GitError, against

BASE: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://schemas.test/order.created/v1",
    "type": "object",
    "required": ["order_id"],
    "properties": {
        "order_id": {"type": "string"},
        "amount": {"type": ["integer", "null"], "minimum": 0},
        "currency": {"enum": ["EUR", "USD"]},
        "note": {"type": "string", "maxLength": 100},
        "price": {"$ref": "https://schemas.test/common/money/v1#/$defs/cents"},
    },
}
MONEY: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://schemas.test/common/money/v1",
    "$defs": {"cents": {"type": "integer"}, "euros": {"type": "string"}},
}


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "config", "user.email", "test@example.com")
    git(tmp_path, "config", "user.name", "test")
    write(tmp_path, BASE)
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-q", "-m", "base")
    return tmp_path


def write(repo: Path, order: dict[str, Any], money: dict[str, Any] = MONEY) -> None:
    schemas = repo / "schemas"
    (schemas / "common").mkdir(parents=True, exist_ok=True)
    (schemas / "com.example.order.created.json").write_text(json.dumps(order, indent=2))
    (schemas / "common" / "money.json").write_text(json.dumps(money, indent=2))


def edit(**changes: Any) -> dict[str, Any]:
    order = json.loads(json.dumps(BASE))
    for key, value in changes.items():
        target = order
        *parents, last = key.split("__")
        for parent in parents:
            target = target[parent]
        if value is None:
            del target[last]
        else:
            target[last] = value
    return order


@pytest.mark.parametrize(
    ("order", "breaking", "info"),
    [
        (BASE, [], []),
        (edit(properties__note=None), ["property 'note' removed"], []),
        (edit(required=["order_id", "amount"]), ["property 'amount' made required"], []),
        (edit(properties__amount__type="integer"), ["type narrowed"], []),
        (edit(properties__note__type=["string", "null"]), [], ["type widened"]),
        (edit(properties__currency__enum=["EUR"]), ["enum values removed: ['USD']"], []),
        (edit(properties__currency__enum=["EUR", "USD", "GBP"]), [], ["enum values added"]),
        (edit(additionalProperties=False), ["additionalProperties closed"], []),
        (edit(properties__note__maxLength=50), ["maxLength tightened to 50"], []),
        (edit(properties__note__maxLength=500), [], ["maxLength loosened"]),
        (edit(properties__amount__minimum=1), ["minimum tightened to 1"], []),
        (edit(properties__coupon={"type": "string"}), [], ["property 'coupon' added"]),
        (
            edit(properties__price={"$ref": "https://schemas.test/common/money/v1#/$defs/euros"}),
            ["type narrowed", "the reference now points at an incompatible schema"],
            [],
        ),
    ],
)
def test_verdicts(repo: Path, order: dict[str, Any], breaking: list[str], info: list[str]) -> None:
    write(repo, order)
    found = against("main", repo / "schemas")
    errors = [p.message for p in found if p.is_error]
    notes = [p.message for p in found if p.severity == "info"]
    assert len(errors) == len(breaking), errors
    for wanted in breaking:
        assert any(wanted in m for m in errors), (wanted, errors)
    for wanted in info:
        assert any(wanted in m for m in notes), (wanted, notes)
    if not breaking and not info:
        assert found == []


def test_breaking_changes_carry_file_and_line(repo: Path) -> None:
    write(repo, edit(properties__currency__enum=["EUR"]))
    [problem] = [p for p in against("main", repo / "schemas") if p.is_error]
    assert problem.file.endswith("com.example.order.created.json")
    lines = (repo / "schemas" / "com.example.order.created.json").read_text().splitlines()
    assert '"enum"' in lines[problem.line - 1]
    assert problem.path == "properties.currency.enum"


def test_a_change_inside_a_referenced_definition_is_reported_there(repo: Path) -> None:
    money = json.loads(json.dumps(MONEY))
    money["$defs"]["cents"]["minimum"] = 0
    write(repo, BASE, money)
    [problem] = [p for p in against("main", repo / "schemas") if p.is_error]
    assert problem.file.endswith("money.json")
    assert "minimum tightened" in problem.message


def test_added_and_removed_files(repo: Path) -> None:
    (repo / "schemas" / "common" / "money.json").unlink()
    (repo / "schemas" / "com.example.order.paid.json").write_text(json.dumps({"type": "object"}))
    found = against("main", repo / "schemas")
    assert any(p.is_error and "schema file removed (definitions)" in p.message for p in found)
    assert any(p.severity == "info" and "new schema file" in p.message for p in found)


def test_a_sequence_of_commits(repo: Path) -> None:
    write(repo, edit(properties__coupon={"type": "string"}))
    git(repo, "commit", "-qam", "add coupon")
    assert not [p for p in against("HEAD", repo / "schemas") if p.is_error]
    write(repo, edit(properties__coupon={"type": "string"}, required=["order_id", "coupon"]))
    assert [p.message for p in against("HEAD", repo / "schemas") if p.is_error] == [
        "breaking change: property 'coupon' made required"
    ]
    assert [p for p in against("HEAD~1", repo / "schemas") if p.is_error]


def test_an_unknown_ref_is_a_git_error(repo: Path) -> None:
    with pytest.raises(GitError):
        against("no-such-branch", repo / "schemas")
