"""The editor schemas (`gateway schema`): generated from the loader's own description, shipped
in the package and the repository unchanged, accepting every config the loader takes (the
example files, `${VAR}` anywhere) and refusing, at the same key, a sample of what it refuses."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest
import yaml

from gateway.cli import main
from gateway.config import collect
from gateway.config.loader import GATEWAY_KEYS
from gateway.config.schemagen import KINDS, packaged, text
from gateway.config.sections import SERVER_KEYS
from gateway.config.subscriptions import RETRY_KEYS, SUBSCRIPTION_KEYS
from tests.schema_oracle import assert_valid, check_deployment, errors_in, validator
from tests.unit.test_config import CONTRACT_BILLING, CONTRACT_GATEWAY, ENV
from tests.unit.test_source_config import CONTRACT_SOURCES
from tests.unit.test_source_config import ENV as SOURCE_ENV

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = {
    "config": [REPO / "config" / "gateway.yaml"],
    "subscriptions": sorted((REPO / "config" / "subscriptions").glob("*.yaml")),
    "sources": sorted((REPO / "config" / "sources").glob("*.yaml")),
}


@pytest.mark.parametrize("kind", KINDS)
def test_committed_and_packaged_copies_equal_the_generated_schema(kind: str) -> None:
    generated = text(kind)
    committed = (REPO / "config" / "schema" / f"{kind}.json").read_text(encoding="utf-8")
    hint = "regenerate with `gateway schema --write config/schema` (and gateway/config/schema)"
    assert committed == generated, hint
    assert packaged(kind) == generated, hint
    assert json.loads(generated)["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    validator(kind)  # a valid draft 2020-12 schema


@pytest.mark.parametrize("kind", KINDS)
def test_gateway_schema_prints_it(kind: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", kind]) == 0
    assert capsys.readouterr().out == text(kind)


def test_gateway_schema_write(tmp_path: Path) -> None:
    assert main(["schema", "--write", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{k}.json" for k in sorted(KINDS)]


def test_the_schemas_know_exactly_the_loaders_keys() -> None:
    config = json.loads(text("config"))
    assert tuple(config["properties"]) == GATEWAY_KEYS
    assert tuple(config["properties"]["server"]["properties"]) == SERVER_KEYS
    item = json.loads(text("subscriptions"))["properties"]["subscriptions"]["anyOf"][0]["items"]
    assert tuple(item["properties"]) == SUBSCRIPTION_KEYS
    retry = item["properties"]["delivery"]["properties"]["retry"]
    assert tuple(retry["properties"]) == RETRY_KEYS


@pytest.mark.parametrize(
    ("kind", "path"), [(k, p) for k, paths in EXAMPLES.items() for p in paths],
    ids=lambda v: v if isinstance(v, str) else v.name,
)  # fmt: skip
def test_every_example_file_validates_and_names_its_schema(kind: str, path: Path) -> None:
    assert_valid(kind, path)
    first = path.read_text(encoding="utf-8").splitlines()[0]
    match = re.fullmatch(r"# yaml-language-server: \$schema=(\S+)", first)
    assert match, f"{path}: the first line names the schema for the YAML language server"
    assert (path.parent / match.group(1)).resolve() == REPO / "config" / "schema" / f"{kind}.json"


def test_the_example_deployment_loads_and_validates() -> None:
    assert check_deployment(REPO / "config" / "gateway.yaml", {})


def test_the_contracts_examples_validate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "schemas").mkdir()
    for name, body in {
        "config/gateway.yaml": CONTRACT_GATEWAY,
        "config/subscriptions/billing.yaml": CONTRACT_BILLING,
        "config/sources/contract.yaml": CONTRACT_SOURCES,
    }.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(body, encoding="utf-8")
    assert check_deployment(Path("config/gateway.yaml"), {**ENV, **SOURCE_ENV})


# ${VAR} may stand for any value: the schema accepts it where a number, flag or duration goes.
VARIABLES = [
    ("config", "server: {port: '${PORT}', max_body_bytes: '${MAX:-1024}'}"),
    ("config", "dedupe_window: ${WINDOW:-24h}\nretention: '${RETENTION}'"),
    ("config", "egress: {deny_private: '${DENY_PRIVATE}'}"),
    ("config", "validation: {unknown_types: '${UNKNOWN}'}"),
    ("subscriptions", "subscriptions:\n  - {name: '${NAME}', sink: '${SINK}',"
                      " delivery: {max_in_flight: '${N}', retry: {jitter: '${J}'}}}"),
    ("sources", "sources:\n  - {name: s, verify: {kind: '${KIND}'}, event: {type: t}}"),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "written"), VARIABLES)
def test_a_variable_is_accepted_anywhere(kind: str, written: str) -> None:
    assert errors_in(kind, written) == []


# (kind, file text, the key the loader names, whether the schema names its parent instead:
# unknown and missing keys are reported by JSON Schema at the mapping that holds them)
REFUSED = [
    ("config", "server: {port: 70000}", "server.port", False),
    ("config", "server: {port: eighty}", "server.port", False),
    ("config", "server: {hots: 0.0.0.0}", "server.hots", True),
    ("config", "colour: blue", "colour", True),
    ("config", "store: mysql://db/gw", "store", False),
    ("config", "validation: {unknown_types: maybe}", "validation.unknown_types", False),
    ("config", "dedupe_window: soon", "dedupe_window", False),
    ("config", "dispatch: {poll_interval: 0s}", "dispatch.poll_interval", False),
    ("config", "limits: {max_attribute_bytes: 10}", "limits.max_attribute_bytes", False),
    ("config", "egress: {deny_private: maybe}", "egress.deny_private", False),
    ("config", "producers: [{name: a}]", "producers[0]", False),
    ("config", "producers: [{token: t}]", "producers[0]", False),
    ("config", "producer_attribute: Not-An-Attribute", "producer_attribute", False),
    ("config", "defaults: {delivery: {mode: carrier-pigeon}}", "defaults.delivery.mode", False),
    ("subscriptions", "subscriptions: [{sink: 'http://127.0.0.1:9/'}]", "subscriptions[0]",
     False),
    ("subscriptions", "subscriptions: [{name: Bad, sink: 'http://127.0.0.1:9/'}]",
     "subscriptions[0].name", False),
    ("subscriptions", "subscriptions: [{name: a, sink: 'ftp://example.com/'}]",
     "subscriptions[0].sink", False),
    ("subscriptions", "subscriptions: [{name: a, sink: 'http://127.0.0.1:9/', typo: 1}]",
     "subscriptions[0].typo", True),
    ("subscriptions", "subscriptions: [{name: a, sink: 'http://127.0.0.1:9/',"
     " delivery: {retry: {max_attempts: 0}}}]", "subscriptions[0].delivery.retry.max_attempts",
     False),
    ("subscriptions", "subscriptions: [{name: a, sink: 'http://127.0.0.1:9/',"
     " delivery: {timeout: 0}}]", "subscriptions[0].delivery.timeout", False),
    ("subscriptions", "subscriptions: [{name: a, sink: 'http://127.0.0.1:9/',"
     " delivery: {retry: {schedule: []}}}]", "subscriptions[0].delivery.retry.schedule", False),
    ("subscriptions", "subscriptions: [{name: a, sink: 'http://127.0.0.1:9/', types: []}]",
     "subscriptions[0].types", False),
    ("subscriptions", "subscriptions: [{name: a, sink: 'http://127.0.0.1:9/',"
     " filters: [{regex: {type: x}}]}]", "subscriptions[0].filters[0].regex", True),
    ("subscriptions", "subscriptions: [{name: a, sink: 'http://127.0.0.1:9/',"
     " filters: [{exact: {type: x}, prefix: {type: y}}]}]", "subscriptions[0].filters[0]",
     False),
    ("subscriptions", "subscriptions: [{name: a, sink: 'http://127.0.0.1:9/',"
     " filters: [{any: []}]}]", "subscriptions[0].filters[0].any", False),
    ("subscriptions", "subscriptions: [{name: a, sink: 'http://127.0.0.1:9/',"
     " signing: {secret: not-whsec}}]", "subscriptions[0].signing.secret", False),
    ("subscriptions", "subscriptions: [{name: a, sink: 'http://127.0.0.1:9/',"
     " signing: {}}]", "subscriptions[0].signing", False),
    ("subscriptions", "subscriptions: [{name: a, sink: 'http://127.0.0.1:9/',"
     " auth: {basic: x}}]", "subscriptions[0].auth.basic", True),
    ("sources", "sources: [{name: s, event: {type: t}}]", "sources[0]", False),
    ("sources", "sources: [{name: s, preset: jira}]", "sources[0].preset", False),
    ("sources", "sources: [{name: s, verify: {kind: bearer, secret: x, header: H},"
     " event: {type: t}}]", "sources[0].verify.header", True),
    ("sources", "sources: [{name: s, preset: github, verify: {secret: x, username: u}}]",
     "sources[0].verify.username", True),
    ("sources", "sources: [{name: s, verify: {kind: none}, event: {type: t, data: x}}]",
     "sources[0].event.data", True),
    ("sources", "sources: [{name: s, verify: {kind: none}, event: {type: t},"
     " path: 'no-slash'}]", "sources[0].path", False),
]  # fmt: skip

FILE_OF = {
    "config": "config/gateway.yaml",
    "subscriptions": "config/subscriptions/test.yaml",
    "sources": "config/sources/test.yaml",
}


@pytest.mark.parametrize(("kind", "written", "key", "at_parent"), REFUSED)
def test_what_the_loader_refuses_fails_the_schema_at_the_same_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, written: str, key: str,
    at_parent: bool,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "schemas").mkdir()
    (tmp_path / "config" / "subscriptions").mkdir(parents=True)
    (tmp_path / "config" / "sources").mkdir()
    (tmp_path / "config" / "gateway.yaml").write_text("")
    (tmp_path / FILE_OF[kind]).write_text(textwrap.dedent(written), encoding="utf-8")
    _, problems = collect(Path("config/gateway.yaml"), {})
    assert key in {p.path for p in problems}, [str(p) for p in problems]
    paths = {path for path, _ in errors_in(kind, written)}
    expected = (key.rsplit(".", 1)[0] if "." in key else "") if at_parent else key
    assert expected in paths, (key, sorted(paths))


def test_the_pre_commit_hook_checks_config_and_schemas() -> None:
    (hook,) = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    assert (hook["id"], hook["entry"], hook["language"]) == ("gateway-check", "gateway check",
                                                             "python")  # fmt: skip
    assert hook["pass_filenames"] is False
    files = re.compile(hook["files"])
    for name in ("config/gateway.yaml", "config/subscriptions/billing.yaml",
                 "schemas/com.example.order.created.json", "schemas/common/ids.json"):
        assert files.search(name), name
    for name in ("README.md", "gateway/cli.py", "examples/order-created.json"):
        assert not files.search(name), name
