"""`gateway check` findings across files, its output formats, and `--against` end to end."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.integration.conftest import ORDER_SCHEMA, write_deployment
from tests.integration.process import run_cli

SUBS = [
    {"name": "known", "sink": "http://127.0.0.1:1/a", "types": ["com.example.order.created"]},
    {"name": "typo", "sink": "http://127.0.0.1:1/b", "types": ["com.example.order.craeted"]},
    {"name": "filtered", "sink": "http://127.0.0.1:1/c",
     "filters": [{"any": [{"prefix": {"type": "com.example.invoice."}},
                          {"exact": {"type": "com.example.order.created"}}]}]},
]


def findings(path: Path, *extra: str) -> tuple[int, list[dict[str, object]]]:
    result = run_cli("check", "--json", "-c", str(path), *extra)
    return result.returncode, json.loads(result.stdout)["problems"]


def test_types_without_schema_are_warnings_unless_unknown_types_reject(tmp_path: Path) -> None:
    path = write_deployment(tmp_path, SUBS)
    code, problems = findings(path)
    assert code == 0  # warnings do not fail the check
    by_path = {(p["path"], p["severity"]): p["message"] for p in problems}
    assert "com.example.order.craeted" in str(by_path[("subscriptions[1].types[0]", "warning")])
    tested = ("subscriptions[2].filters[0].any[0].prefix.type", "warning")
    assert "com.example.invoice." in str(by_path[tested])
    assert len(problems) == 2

    strict = write_deployment(tmp_path, SUBS, gateway={"validation": {"unknown_types": "reject"}})
    code, problems = findings(strict)
    assert code == 1
    errors = [p for p in problems if p["severity"] == "error"]
    assert [p["path"] for p in errors] == ["subscriptions[1].types[0]"]
    assert isinstance(errors[0]["line"], int)
    assert errors[0]["line"] > 0


def test_github_annotations(tmp_path: Path) -> None:
    path = write_deployment(tmp_path, [{"name": "x", "sink": "http://127.0.0.1:1/x",
                                        "delivery": {"retry": {"max_attempts": 0}}}])
    result = run_cli("check", "--format", "github", "-c", str(path))
    assert result.returncode == 1
    line = result.stdout.splitlines()[0]
    assert line.startswith("::error file=")
    assert ",line=" in line
    assert "title=subscriptions[0].delivery.retry.max_attempts::must be >= 1" in line


def test_against_a_git_ref_reports_breaking_schema_changes(tmp_path: Path) -> None:
    path = write_deployment(tmp_path, SUBS[:1])
    for args in (["init", "-q", "-b", "main"], ["config", "user.email", "t@example.com"],
                 ["config", "user.name", "t"], ["add", "-A"], ["commit", "-qm", "base"]):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)
    schema = json.loads(json.dumps(ORDER_SCHEMA))
    schema["required"].append("currency")
    (tmp_path / "schemas" / "com.example.order.created.json").write_text(
        json.dumps(schema, indent=2)
    )
    code, problems = findings(path, "--against", "main")
    assert code == 1
    [breaking] = [p for p in problems if p["severity"] == "error"]
    assert breaking["message"] == "breaking change: property 'currency' made required"
    assert str(breaking["file"]).endswith("com.example.order.created.json")
    bad_ref = run_cli("check", "-c", str(path), "--against", "nope")
    assert bad_ref.returncode == 1
    # git's own words, not a generic failure
    assert "--against nope: fatal: bad revision 'nope'" in bad_ref.stderr


def test_route_shows_what_a_source_request_becomes() -> None:
    result = run_cli(
        "route", "--json", "--source", "github", "--body", "examples/github-issues-opened.json",
        "--header", "X-GitHub-Event: issues", "--header", "X-GitHub-Delivery: d-1",
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["event"]["type"] == "com.github.issues.opened"
    assert report["event"]["id"] == "d-1"
    assert report["event"]["subject"] == "42"
    assert report["event"]["data"]["issue"]["number"] == 42
    matched = {s["name"]: s["matched"] for s in report["subscriptions"]}
    # The example's GitHub events go to the CI bot only.
    assert matched == {"analytics": False, "billing": False, "warehouse": False, "ci-bot": True}
    missing = run_cli("route", "--source", "github", "--body", "examples/github-issues-opened.json")
    assert missing.returncode == 1
    assert "would be refused (422)" in missing.stderr


def test_the_example_deployment_is_clean() -> None:
    result = run_cli("check", "--json")
    assert result.returncode == 0
    assert json.loads(result.stdout) == {"ok": True, "problems": []}


def test_suspicious_cesql_is_a_warning(tmp_path: Path) -> None:
    path = write_deployment(tmp_path, [
        {"name": "odd", "sink": "http://127.0.0.1:1/o",
         "filters": [{"any": [{"sql": "NOT subject = 'x'"}, {"sql": "FOO(subject)"}]}]},
    ])
    code, problems = findings(path)
    assert code == 0
    messages = [p["message"] for p in problems if p["severity"] == "warning"]
    assert any("NOT binds tighter" in str(m) for m in messages)
    assert any("no function FOO" in str(m) for m in messages)
    assert sorted(p["path"] for p in problems) == [
        "subscriptions[0].filters[0].any[0].sql", "subscriptions[0].filters[0].any[1].sql"
    ]


def test_check_warns_about_sinks_the_egress_policy_refuses(tmp_path: Path) -> None:
    subs = [
        {"name": "metadata", "sink": "http://169.254.169.254/latest/meta-data"},
        {"name": "private", "sink": "http://10.0.0.7/hook",
         "delivery": {"dead_letter": "http://[fe80::1]/dead"}},
        {"name": "named", "sink": "http://sink.internal/hook"},  # checked when it resolves
    ]
    path = write_deployment(tmp_path, subs, gateway={"egress": {"deny": ["10.0.0.0/8"]}})
    code, problems = findings(path)
    assert code == 0
    found = {(p["path"], p["severity"]): str(p["message"]) for p in problems}
    assert set(found) == {
        ("subscriptions[0].sink", "warning"),
        ("subscriptions[1].sink", "warning"),
        ("subscriptions[1].delivery.dead_letter", "warning"),
    }
    assert "169.254.169.254 is link-local" in found[("subscriptions[0].sink", "warning")]
    assert "egress.deny (10.0.0.0/8)" in found[("subscriptions[1].sink", "warning")]


def test_types_a_source_produces_count_as_declared(tmp_path: Path) -> None:
    path = write_deployment(tmp_path, [
        {"name": "gh", "sink": "http://127.0.0.1:1/a",
         "filters": [{"prefix": {"type": "com.github."}}]},
        {"name": "gh-push", "sink": "http://127.0.0.1:1/b",
         "filters": [{"exact": {"type": "com.github.push"}}]},
        {"name": "gl", "sink": "http://127.0.0.1:1/c",
         "filters": [{"prefix": {"type": "com.gitlab."}}]},
    ], sources=[{"name": "github", "preset": "github", "verify": {"secret": "s"}}])
    code, problems = findings(path)
    assert code == 0
    assert [(p["path"], p["severity"]) for p in problems] == [
        ("subscriptions[2].filters[0].prefix.type", "warning")
    ]
    assert "no schema declares and no source produces" in str(problems[0]["message"])


def _line_of(path: Path, text: str) -> int:
    """The 1-based line of the first line of `path` containing `text`."""
    lines = path.read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


def test_a_broken_subscription_file_does_not_hide_a_broken_schema(tmp_path: Path) -> None:
    path = write_deployment(tmp_path, SUBS[:1])
    broken = tmp_path / "config" / "subscriptions" / "zz-broken.yaml"
    broken.write_text("subscriptions:\n  - name: x\n    sink: http://127.0.0.1:1/x\n"
                      "    delivery: {retry: {max_attempts: 0}}\n")
    (tmp_path / "schemas" / "com.example.bad.json").write_text(
        json.dumps({"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "nope"})
    )
    code, problems = findings(path)
    assert code == 1
    files = {Path(str(p["file"])).name for p in problems if p["severity"] == "error"}
    assert files == {"zz-broken.yaml", "com.example.bad.json"}
    text = run_cli("check", "-c", str(path))
    assert "zz-broken.yaml:4: subscriptions[0].delivery.retry.max_attempts" in text.stdout
    assert "com.example.bad.json" in text.stdout
    assert "ok:" not in text.stderr


def test_warnings_are_placed_like_errors(tmp_path: Path) -> None:
    """The line of the offending key, and the subscription's index inside its own file."""
    path = write_deployment(tmp_path, SUBS[:1])
    second = tmp_path / "config" / "subscriptions" / "zz-second.yaml"
    second.write_text(
        "subscriptions:\n"
        "  - name: second\n"
        "    sink: http://169.254.169.254/x\n"
        "    types:\n"
        "      - com.example.order.created\n"
        "      - com.example.order.craeted\n"
        "    filters:\n"
        "      - all:\n"
        "          - exact: {subject: a}\n"
        "          - sql: \"INT(amount) + 1\"\n"
    )
    code, problems = findings(path)
    assert code == 0
    mine = [p for p in problems if str(p["file"]).endswith("second.yaml")]
    found = {(str(p["path"]), p["line"]) for p in mine}
    assert found == {
        ("subscriptions[0].sink", _line_of(second, "sink:")),
        ("subscriptions[0].types[1]", _line_of(second, "craeted")),
        ("subscriptions[0].filters[0].all[1].sql", _line_of(second, "sql:")),
    }
    [sql] = [p for p in problems if str(p["path"]).endswith(".sql")]
    assert "never a Boolean" in str(sql["message"])
    assert sql["severity"] == "warning"
    text = run_cli("check", "-c", str(path)).stdout
    line = _line_of(second, "craeted")
    assert f"zz-second.yaml:{line}: warning: subscriptions[0].types[1]: type " in text


def test_a_clean_check_says_what_it_checked(tmp_path: Path) -> None:
    path = write_deployment(tmp_path, SUBS[:1],
                            sources=[{"name": "github", "preset": "github",
                                      "verify": {"secret": "s"}}])  # fmt: skip
    result = run_cli("check", "-c", str(path))
    assert result.returncode == 0
    assert result.stdout == ""
    # gateway.yaml, the subscriptions file and the sources file; one schema
    assert result.stderr.strip().splitlines()[-1] == (
        "ok: 3 files, 1 subscription, 1 source, 1 schema"
    )
    assert json.loads(run_cli("check", "--json", "-c", str(path)).stdout) == {
        "ok": True, "problems": []
    }
