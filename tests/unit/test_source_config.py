"""config/sources/*.yaml: the contract's example, presets merged with overrides, and every
problem reported as FILE:LINE: path: message."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from gateway.config import collect, load
from gateway.config.model import Config
from tests.schema_oracle import check_deployment

# CONTRACT 1, config/sources/*.yaml, as printed there except for the quotes around
# "${GITHUB_WEBHOOK_SECRET}": unquoted, `{` inside a flow mapping is not valid YAML.
CONTRACT_SOURCES = """\
sources:
  - name: github
    preset: github            # fills verify + event mapping for GitHub webhooks
    verify: {secret: "${GITHUB_WEBHOOK_SECRET}"}
  - name: shop
    path: /sources/shop       # default /sources/<name>
    verify:
      kind: hmac              # hmac | bearer | basic | standard-webhooks | github | stripe | ...
      header: X-Shop-Signature
      algorithm: sha256
      encoding: hex           # hex | base64
      prefix: "sha256="
      secret: ${SHOP_SECRET}
    event:                    # templates build each CloudEvent attribute
      type: "com.shop.{body.event}"
      source: "https://shop.example/{body.store_id}"
      id: "{headers.x-shop-delivery}"   # omitted -> the gateway mints one
      subject: "{body.order.id}"
      time: "{body.created_at}"
"""
ENV = {"GITHUB_WEBHOOK_SECRET": "gh-secret", "SHOP_SECRET": "shop-secret"}


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "schemas").mkdir()
    (tmp_path / "config" / "sources").mkdir(parents=True)
    (tmp_path / "config" / "gateway.yaml").write_text("")
    return tmp_path


def deploy(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text), encoding="utf-8")
    # Every deployment the loader takes validates against the editor schemas too.
    check_deployment(Path("config/gateway.yaml"), ENV)
    return Path("config/gateway.yaml")


def problems(root: Path, files: dict[str, str], env: dict[str, str] | None = None) -> list[str]:
    config, found = collect(deploy(root, files), ENV if env is None else env)
    assert config is None or not found
    return [str(p) for p in found]


def _texts(config: Config, name: str) -> dict[str, list[str]]:
    source = next(s for s in config.sources if s.name == name)
    return {attr: [t.text for t in templates] for attr, templates in source.event}


def test_contract_example_loads(root: Path) -> None:
    config = load(deploy(root, {"config/sources/all.yaml": CONTRACT_SOURCES}), ENV)
    github, shop = config.sources
    assert (github.name, github.path, github.preset) == ("github", "/sources/github", "github")
    assert (github.verify.kind, github.verify.scheme) == ("hmac", "github")
    assert github.verify.header == "x-hub-signature-256"
    assert github.verify.secrets == ("gh-secret",)
    assert github.payload_field == "payload"
    assert (shop.path, shop.verify.kind, shop.verify.prefix) == ("/sources/shop", "hmac", "sha256=")
    assert shop.verify.header == "x-shop-signature"
    assert shop.verify.secrets == ("shop-secret",)
    assert _texts(config, "shop") == {
        "type": ["com.shop.{body.event}"],
        "source": ["https://shop.example/{body.store_id}"],
        "id": ["{headers.x-shop-delivery}"],
        "subject": ["{body.order.id}"],
        "time": ["{body.created_at}"],
    }
    assert (shop.file, shop.line) == ("config/sources/all.yaml", 5)
    assert "shop-secret" not in repr(shop)


def test_defaults_overrides_and_secret_lists(root: Path) -> None:
    path = deploy(root, {
        "config/sources/a.yaml": """\
        sources:
          - name: inhouse
            verify: {kind: bearer, secret: [new, old]}
            event: {type: com.example.thing}
          - name: gh
            preset: github
            path: /hooks/gh
            verify: {secret: s, header: X-Hub-Signature, algorithm: sha1}
            event: {subject: null, id: ["{headers.x-request-id}", "{body.id}"]}
          - name: slacky
            preset: slack
            verify: {secret: s, tolerance: 1m}
          - name: open
            preset: stripe
            verify: {kind: none}
        """,
    })  # fmt: skip
    config = load(path, {})
    inhouse, gh, slacky, open_ = config.sources
    assert inhouse.verify.secrets == ("new", "old")
    assert _texts(config, "inhouse") == {"source": ["/sources/inhouse"],
                                         "type": ["com.example.thing"]}  # fmt: skip
    assert (gh.path, gh.verify.header, gh.verify.algorithm) == ("/hooks/gh", "x-hub-signature",
                                                                "sha1")  # fmt: skip
    assert gh.verify.prefix == "sha256="  # kept from the scheme
    texts = _texts(config, "gh")
    assert "subject" not in texts
    assert texts["id"] == ["{headers.x-request-id}", "{body.id}"]
    assert (slacky.verify.tolerance, slacky.verify.timestamp_header) == (
        60.0,
        "x-slack-request-timestamp",
    )
    assert slacky.handshake == "slack"
    assert open_.verify.kind == "none"


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("- {name: a, preset: gitlub, verify: {secret: s}}",
         "2: sources[0].preset: must be one of: github, gitlab, stripe, shopify, slack, "
         "standard-webhooks"),
        ("- {name: a, verify: {kind: hmca, secret: s}, event: {type: t}}",
         "2: sources[0].verify.kind: must be one of: hmac, token, bearer, basic, stripe, "
         "standard-webhooks, none, github, gitlab, shopify, slack"),
        ("- {name: a, verify: {kind: bearer}, event: {type: t}}",
         "2: sources[0].verify: missing required key 'secret'"),
        ("- {name: a, preset: github}", "2: sources[0].verify: missing required key 'secret'"),
        ("- {name: a, event: {type: t}}", "2: sources[0]: missing required key 'verify' (write "
         "`verify: {kind: none}` to accept unsigned requests)"),
        ("- {name: a, verify: {kind: none}}", "2: sources[0]: missing required key 'event'"),
        ("- {name: a, verify: {kind: none}, event: {id: '{body.id}'}}",
         "2: sources[0].event: missing required key 'type'"),
        ("- {name: a, verify: {kind: none}, event: {type: 'com.{body.x'}}",
         "2: sources[0].event.type: invalid template: '{' without a matching '}' (write '{{' for "
         "a literal brace) (at offset 4)"),
        ("- {name: a, verify: {kind: none}, event: {type: t, subject: ['{nope.x}']}}",
         "2: sources[0].event.subject[0]: invalid template: unknown reference {nope.x}: it must "
         "start with headers, query, body (at offset 0)"),
        ("- {name: a, verify: {kind: none}, event: {type: t, id: fixed}}",
         "2: sources[0].event.id: has no reference: every request would get the same id"),
        ("- {name: a, verify: {kind: none}, event: {type: t, datacontenttype: x}}",
         "2: sources[0].event.datacontenttype: 'datacontenttype' is the request's Content-Type "
         "and cannot be set by a template"),
        ("- {name: a, verify: {kind: none}, event: {type: t, Bad_Name: x}}",
         "2: sources[0].event.Bad_Name: is not a CloudEvents attribute name (lower-case a-z and "
         "0-9 only)"),
        ("- {name: a, verify: {kind: none}, event: {type: []}}",
         "2: sources[0].event.type: must list at least one template"),
        ("- {name: A, verify: {kind: none}, event: {type: t}}",
         "2: sources[0].name: must match [a-z0-9][a-z0-9_-]* (lower-case)"),
        ("- {name: a, path: /events, verify: {kind: none}, event: {type: t}}",
         "2: sources[0].path: collides with the gateway's own endpoint /events"),
        ("- {name: a, path: /healthz/x, verify: {kind: none}, event: {type: t}}",
         "2: sources[0].path: collides with the gateway's own endpoint /healthz"),
        ("- {name: a, path: 'hooks/{x}', verify: {kind: none}, event: {type: t}}",
         "2: sources[0].path: must be a plain absolute path such as /sources/shop (no query, no "
         "braces, no trailing slash)"),
        ("- {name: a, path: /a/, verify: {kind: none}, event: {type: t}}",
         "2: sources[0].path: must be a plain absolute path such as /sources/shop (no query, no "
         "braces, no trailing slash)"),
        ("- {name: a, verify: {kind: hmac, secret: s}, event: {type: t}}",
         "2: sources[0].verify: missing required key 'header'"),
        ("- {name: a, verify: {kind: hmac, header: X, secret: s, algorithm: md5}, "
         "event: {type: t}}",
         "2: sources[0].verify.algorithm: must be one of: sha1, sha256, sha512"),
        ("- {name: a, verify: {kind: hmac, header: X, secret: s, signed: '{timestamp}.{body}'}, "
         "event: {type: t}}",
         "2: sources[0].verify.signed: uses {timestamp}: set timestamp_header too"),
        ("- {name: a, verify: {kind: hmac, header: 'X Y', secret: s}, event: {type: t}}",
         "2: sources[0].verify.header: is not a valid header name"),
        ("- {name: a, verify: {kind: bearer, secret: s, header: X}, event: {type: t}}",
         "2: sources[0].verify.header: unknown key 'header'"),
        ("- {name: a, verify: {kind: standard-webhooks, secret: nope}, event: {type: t}}",
         "2: sources[0].verify.secret: must be 'whsec_' followed by base64"),
        ("- {name: a, verify: {kind: standard-webhooks, secret: [whsec_AAAA, x]}, "
         "event: {type: t}}",
         "2: sources[0].verify.secret[1]: must be 'whsec_' followed by base64"),
        ("- {name: a, preset: standard-webhooks, verify: {secret: whsec_AAAA, tolerance: 1h}}",
         "2: sources[0].verify.tolerance: must be <= 5m (the Standard Webhooks tolerance)"),
        ("- {name: a, verify: {kind: token, secret: []}, event: {type: t}}",
         "2: sources[0].verify: missing required key 'header'"),
        ("- {name: a, preset: github, verify: {secret: s}, patht: /x}",
         "2: sources[0].patht: unknown key 'patht' (did you mean 'path'?)"),
    ],
)  # fmt: skip
def test_problems_name_file_line_and_key(root: Path, entry: str, expected: str) -> None:
    found = problems(root, {"config/sources/s.yaml": "sources:\n  " + entry + "\n"})
    assert f"config/sources/s.yaml:{expected}" in found


def test_names_and_paths_are_unique_across_files(root: Path) -> None:
    found = problems(root, {
        "config/sources/a.yaml": """\
        sources:
          - {name: shop, verify: {kind: none}, event: {type: t}}
          - {name: other, path: /hooks/x, verify: {kind: none}, event: {type: t}}
        """,
        "config/sources/b.yaml": """\
        sources:
          - {name: shop, path: /hooks/shop, verify: {kind: none}, event: {type: t}}
          - {name: third, path: /sources/shop, verify: {kind: none}, event: {type: t}}
          - {name: x, path: /hooks/x, verify: {kind: none}, event: {type: t}}
        """,
    })  # fmt: skip
    assert found == [
        "config/sources/b.yaml:2: sources[0].name: duplicate source name 'shop' (first at "
        "config/sources/a.yaml:2)",
        "config/sources/b.yaml:3: sources[1].path: path /sources/shop is already taken (first at "
        "config/sources/a.yaml:2)",
        "config/sources/b.yaml:4: sources[2].path: path /hooks/x is already taken (first at "
        "config/sources/a.yaml:3)",
    ]


def test_a_missing_secret_variable_is_reported_once(root: Path) -> None:
    entry = "sources:\n  - {name: gh, preset: github, verify: {secret: '${GH_SECRET}'}}\n"
    found = problems(root, {"config/sources/a.yaml": entry}, env={})
    assert found == [
        "config/sources/a.yaml:2: sources[0].verify.secret: environment variable GH_SECRET is "
        "not set (and has no default)"
    ]


def test_the_example_deployment_is_clean() -> None:
    example = Path(__file__).resolve().parents[2] / "config" / "gateway.yaml"
    config, found = collect(example, {})
    assert found == []
    assert config is not None
    assert {s.name for s in config.sources} >= {"shop", "github"}
