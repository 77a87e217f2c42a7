"""The event catalog (`gateway catalog`, `gateway check --catalog`): who publishes and who
receives each type, the AsyncAPI 3.0 document checked against the official AsyncAPI 3.0 JSON
Schema, and the committed example catalog kept fresh."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
import yaml

from gateway import catalog
from gateway.catalog.model import build
from gateway.cli import main
from gateway.config import load
from gateway.routing.filters import admits_type, compile_filter

REPO = Path(__file__).resolve().parents[2]
VECTORS = REPO / "tests" / "vectors" / "asyncapi"
EXAMPLE = REPO / "config" / "gateway.yaml"


@pytest.mark.parametrize(
    ("spec", "kind", "verdict"),
    [
        ({"exact": {"type": "a.b"}}, "a.b", True),
        ({"exact": {"type": "a.b"}}, "a.c", False),
        ({"prefix": {"type": "a."}}, "a.c", True),
        ({"suffix": {"type": ".c"}}, "a.b", False),
        ({"exact": {"type": "a.b", "subject": "x"}}, "a.b", None),
        ({"exact": {"type": "a.b", "subject": "x"}}, "a.c", False),
        ({"exact": {"subject": "x"}}, "a.b", None),
        ({"not": {"exact": {"type": "a.test"}}}, "a.test", False),
        ({"not": {"exact": {"type": "a.test"}}}, "a.b", True),
        ({"not": {"exact": {"subject": "x"}}}, "a.b", None),
        ({"all": [{"prefix": {"type": "a."}}, {"exact": {"subject": "x"}}]}, "b.c", False),
        ({"all": [{"prefix": {"type": "a."}}, {"suffix": {"type": ".b"}}]}, "a.b", True),
        ({"any": [{"exact": {"type": "a.b"}}, {"exact": {"subject": "x"}}]}, "a.b", True),
        ({"any": [{"exact": {"type": "a.b"}}, {"exact": {"subject": "x"}}]}, "a.c", None),
        ({"any": [{"exact": {"type": "a.b"}}, {"exact": {"type": "a.c"}}]}, "a.d", False),
        ({"sql": "type = 'a.b'"}, "a.b", None),
    ],
)
def test_what_a_filter_says_of_a_type(
    spec: dict[str, Any], kind: str, verdict: bool | None
) -> None:
    assert admits_type(compile_filter(spec, "f"), kind) is verdict


def deployment(root: Path, subscriptions: str, gateway: str = "", sources: str = "") -> Path:
    (root / "schemas").mkdir(parents=True)
    (root / "schemas" / "_v").mkdir()
    (root / "schemas" / "a.created.json").write_text(
        json.dumps({"$id": "https://example.com/a.created/v1", "title": "A created"})
    )
    (root / "schemas" / "_v" / "a.created.v2.json").write_text(
        json.dumps({"$id": "https://example.com/a.created/v2", "title": "A created, v2"})
    )
    (root / "schemas" / "b.done.json").write_text(json.dumps({"type": "object"}))
    config = root / "config"
    (config / "subscriptions").mkdir(parents=True)
    (config / "gateway.yaml").write_text(textwrap.dedent(gateway))
    (config / "subscriptions" / "s.yaml").write_text(textwrap.dedent(subscriptions))
    if sources:
        (config / "sources").mkdir()
        (config / "sources" / "s.yaml").write_text(textwrap.dedent(sources))
    return config / "gateway.yaml"


def test_receivers_publishers_and_versions(tmp_path: Path) -> None:
    path = deployment(
        tmp_path,
        """\
        subscriptions:
          - {name: all, sink: "http://127.0.0.1:9/"}
          - {name: typed, sink: "http://127.0.0.1:9/", types: [a.created], source: /x}
          - name: filtered
            sink: http://127.0.0.1:9/
            filters: [{prefix: {type: a.}}, {not: {exact: {type: a.test}}}]
          - name: sql
            sink: http://127.0.0.1:9/
            filters: [{sql: "subject = 'eu'"}]
          - name: named
            sink: http://127.0.0.1:9/
            filters: [{exact: {type: c.unschemed}}]
        """,
        """\
        producers:
          - {name: p, token: t, types: ["a.*"]}
          - {name: anything, token: u}
        """,
        """\
        sources:
          - name: hook
            verify: {kind: none}
            event: {type: "b.{body.kind}"}
        """,
    )
    cat = build(load(path, {}))
    by_type = {t.type: t for t in cat.types}
    assert list(by_type) == ["a.created", "b.done", "c.unschemed"]
    created = by_type["a.created"]
    assert created.schema is not None
    assert created.schema.file == "schemas/a.created.json"
    assert [v.id for v in created.versions] == ["https://example.com/a.created/v2"]
    receivers = {r.subscription: (r.always, r.conditions) for r in created.receivers}
    assert receivers == {
        "all": (True, ()),
        "typed": (False, ("source is /x",)),
        "filtered": (True, ()),
        "sql": (False, ('sql "subject = \'eu\'"',)),
    }
    assert [(p.kind, p.name) for p in created.publishers] == [
        ("producer", "p"), ("producer", "anything")
    ]
    done = by_type["b.done"]
    assert [(p.kind, p.name) for p in done.publishers] == [
        ("producer", "anything"), ("source", "hook")
    ]
    assert {r.subscription for r in done.receivers} == {"all", "sql"}
    assert by_type["c.unschemed"].schema is None
    (pattern,) = cat.patterns
    assert pattern.template == "b.{body.kind}"
    assert {r.subscription for r in pattern.receivers} == {"all", "sql"}


def test_without_producers_anyone_publishes(tmp_path: Path) -> None:
    path = deployment(tmp_path, "subscriptions: []\n")
    (t, *_) = build(load(path, {})).types
    assert t.publishers[0].kind == "anyone"


def asyncapi_validator() -> jsonschema.Draft7Validator:
    schema = json.loads((VECTORS / "asyncapi-3.0.0.schema.json").read_text(encoding="utf-8"))
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())


def resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for token in ref[2:].split("/"):
        node = node[token.replace("~1", "/").replace("~0", "~")]
    return node


def refs(node: Any, skip: str = "payload") -> list[str]:
    """Every `$ref` of the document outside message payloads (those are the schemas' own)."""
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for k, v in node.items() if k != skip for r in refs(v, skip)]
    if isinstance(node, list):
        return [r for v in node for r in refs(v, skip)]
    return []


def test_the_asyncapi_document_is_valid_asyncapi_3(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["catalog", "-c", str(EXAMPLE), "--format", "asyncapi"]) == 0
    document = yaml.safe_load(capsys.readouterr().out)
    errors = [e.message for e in asyncapi_validator().iter_errors(document)]
    assert errors == []
    # What the JSON Schema cannot see: every reference points at something.
    for ref in refs(document):
        resolve(document, ref)
    operations = document["operations"]
    config = load(EXAMPLE, {})
    sends = {k: v for k, v in operations.items() if v["action"] == "send"}
    assert sorted(sends) == sorted(f"deliver-{s.name}" for s in config.subscriptions)
    assert operations["publishEvents"]["action"] == "receive"
    assert resolve(document, operations["publishEvents"]["channel"]["$ref"])["address"] == (
        "/events"
    )
    billing = sends["deliver-billing"]
    names = {resolve(document, m["$ref"])["$ref"].rsplit("/", 1)[1] for m in billing["messages"]}
    assert names == {"com.example.order.created", "com.example.order.paid"}
    message = document["components"]["messages"]["com.example.order.created"]
    on_disk = json.loads((REPO / "schemas" / "com.example.order.created.json").read_text())
    assert message["payload"]["schema"] == on_disk
    assert message["headers"]["properties"]["ce-type"]["const"] == "com.example.order.created"


def test_the_asyncapi_schema_refuses_a_broken_document() -> None:
    # The oracle can fail: an AsyncAPI 2 style operation is not AsyncAPI 3.0.
    document = yaml.safe_load(catalog.render(load(EXAMPLE, {}), "asyncapi"))
    document["operations"]["publishEvents"]["action"] = "publish"
    assert list(asyncapi_validator().iter_errors(document))


def test_json_catalog(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["catalog", "-c", str(EXAMPLE), "--format", "json"]) == 0
    body = orjson.loads(capsys.readouterr().out)
    assert [t["type"] for t in body["types"]] == [
        "com.example.order.created", "com.example.order.paid", "com.example.order.shipped"
    ]
    assert {s["name"] for s in body["subscriptions"]} == {
        "analytics", "billing", "ci-bot", "warehouse"
    }
    text = json.dumps(body)
    for secret in ("shop-dev-token", "whsec_", "github-dev-secret", "127.0.0.1:900"):
        assert secret not in text


def test_the_committed_example_catalog_is_fresh() -> None:
    committed = (REPO / "examples" / "catalog.md").read_text(encoding="utf-8")
    assert committed == catalog.render(load(EXAMPLE, {}), "markdown"), (
        "regenerate: gateway catalog -c config/gateway.yaml -o examples/catalog.md"
    )


def test_check_catalog_fails_when_out_of_date(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "catalog.md"
    shutil.copy(REPO / "examples" / "catalog.md", copy)
    assert main(["check", "-c", str(EXAMPLE), "--catalog", str(copy)]) == 0
    capsys.readouterr()
    copy.write_text(copy.read_text().replace("`billing`", "`payments`", 1))
    assert main(["check", "-c", str(EXAMPLE), "--catalog", str(copy), "--json"]) == 1
    (problem,) = orjson.loads(capsys.readouterr().out)["problems"]
    assert problem["file"] == str(copy)
    assert problem["line"] > 0
    assert "out of date" in problem["message"]
    assert f"gateway catalog --format markdown -o {copy}" in problem["message"]
    copy.unlink()
    assert main(["check", "-c", str(EXAMPLE), "--catalog", str(copy)]) == 1
    assert "catalog not found" in capsys.readouterr().out


def test_catalog_writes_a_file(tmp_path: Path) -> None:
    out = tmp_path / "api.yaml"
    assert main(["catalog", "-c", str(EXAMPLE), "--format", "asyncapi", "-o", str(out)]) == 0
    assert yaml.safe_load(out.read_text())["asyncapi"] == "3.0.0"
    assert catalog.format_for(out) == "asyncapi"
    assert main(["check", "-c", str(EXAMPLE), "--catalog", str(out)]) == 0


def test_the_readme_excerpt_is_from_the_example_catalog() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    start = readme.index("## Editing\n")
    section = readme[start : readme.index("\n## ", start + 1)]
    rows = [line[2:] for line in section.splitlines() if line.startswith("> |")]
    assert len(rows) == 5
    committed = (REPO / "examples" / "catalog.md").read_text(encoding="utf-8").splitlines()
    for row in rows:
        assert row in committed
    assert "gateway schema --write config/schema" in section
    for kind in ("config", "subscriptions", "sources"):
        assert f'"./config/schema/{kind}.json"' in section
