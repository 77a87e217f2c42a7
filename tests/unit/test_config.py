"""Configuration loading: the contract's example files, every problem as FILE:LINE: path: message,
${VAR} expansion, merging of defaults, store URLs, file discovery and durations."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from gateway.config import collect, load, parse_duration
from gateway.config.model import Backoff, CircuitBreaker, Mode
from gateway.errors import ConfigError
from gateway.event import Event
from gateway.routing.filters import match
from tests.integration.certs import Authority
from tests.schema_oracle import check_deployment

# CONTRACT 1, config/gateway.yaml, as printed there.
CONTRACT_GATEWAY = """\
server:
  host: 127.0.0.1          # default 127.0.0.1
  port: 8080               # default 8080
  max_body_bytes: 1048576  # per request; larger -> 413
store: sqlite:///data/gateway.db
schemas: ../schemas                # folder, relative to this file
sources: sources/                  # folder (every *.yaml in it) or a list of files/globs
subscriptions: subscriptions/      # likewise
validation:
  unknown_types: accept            # accept | reject: events whose type has no schema
dedupe_window: 24h
retention: 7d
defaults:
  delivery: {mode: binary, timeout: 10s, retry: {max_attempts: 8, backoff: exponential}}
producers:
  - name: shop
    token: ${SHOP_INGEST_TOKEN}    # Authorization: Bearer <token>, or ?access_token=<token>
    sources: ["/shop", "/shop/*"]  # optional: the sources this producer may publish (globs)
    types: ["com.example.order.*"] # optional: the types it may publish (globs)
"""

# CONTRACT 1, config/subscriptions/*.yaml, without the sql filter (a later feature).
CONTRACT_BILLING = """\
subscriptions:
  - name: billing
    sink: https://billing.internal/hooks/events
    types: [com.example.order.created]
    source: /shop
    filters:
      - prefix: {type: com.example.order.}
      - any:
          - exact: {subject: eu}
          - suffix: {subject: -eu}
      - not: {exact: {type: com.example.order.test}}
    delivery:
      mode: binary
      timeout: 10s
      max_in_flight: 16
      retry:
        max_attempts: 8
        backoff: exponential
        initial_delay: 1s
        max_delay: 1h
      dead_letter: https://ops.internal/dead
    headers: {X-Team: billing}
    auth:
      bearer: ${BILLING_TOKEN}
    signing:
      secret: ${BILLING_WHSEC}
"""

WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
ENV = {"SHOP_INGEST_TOKEN": "t0ken-shop", "BILLING_TOKEN": "t0ken-billing", "BILLING_WHSEC": WHSEC}
MINIMAL_SUB = "subscriptions:\n  - name: a\n    sink: http://127.0.0.1:9001/\n"


@pytest.fixture
def deploy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Deployer:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "schemas").mkdir()
    return Deployer(tmp_path)


class Deployer:
    """Writes a deployment under a temporary folder that is also the current directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.checked = 0  # deployments that loaded and were checked against the schemas

    def __call__(self, files: dict[str, str]) -> Path:
        for name, text in files.items():
            path = self.root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text), encoding="utf-8")
        # Every deployment the loader takes validates against the editor schemas too.
        self.checked += check_deployment(Path("config/gateway.yaml"), ENV)
        return Path("config/gateway.yaml")

    def problems(self, files: dict[str, str], env: dict[str, str] | None = None) -> list[str]:
        config, problems = collect(self(files), ENV if env is None else env)
        assert config is None or not problems
        return [str(p) for p in problems]


def test_contract_example_loads(deploy: Deployer) -> None:
    path = deploy(
        {
            "config/gateway.yaml": CONTRACT_GATEWAY,
            "config/subscriptions/billing.yaml": CONTRACT_BILLING,
        }
    )
    config = load(path, ENV)
    assert deploy.checked == 1  # and it validates against the editor schemas
    assert config.server.port == 8080
    assert config.store == "sqlite:///data/gateway.db"
    assert config.store_url == f"sqlite:///{deploy.root.resolve()}/config/data/gateway.db"
    assert config.schemas == Path("schemas")
    assert (config.dedupe_window, config.retention) == (86_400.0, 7 * 86_400.0)
    (shop,) = config.producers
    assert (shop.name, shop.tokens, shop.sources) == ("shop", ("t0ken-shop",), ("/shop", "/shop/*"))
    (sub,) = config.subscriptions
    assert (sub.name, sub.source, sub.types) == ("billing", "/shop", ("com.example.order.created",))
    assert (sub.file, sub.line) == ("config/subscriptions/billing.yaml", 2)
    assert sub.delivery.retry.max_delay == 3600.0
    assert sub.delivery.dead_letter == "https://ops.internal/dead"
    assert sub.headers == (("X-Team", "billing"),)
    assert (sub.bearer, sub.signing_secrets) == ("t0ken-billing", (WHSEC,))
    assert [f.describe() for f in sub.filters] == [
        'prefix type="com.example.order."',
        'any(exact subject="eu", suffix subject="-eu")',
        'not(exact type="com.example.order.test")',
    ]
    assert config.subscription("billing") is sub


def test_contract_sql_filter_compiles_and_bad_cesql_is_located(deploy: Deployer) -> None:
    billing = CONTRACT_BILLING.replace(
        "      - not:", '      - sql: "EXISTS amount AND INT(amount) > 100"\n      - not:'
    )
    files = {"config/gateway.yaml": CONTRACT_GATEWAY, "config/subscriptions/billing.yaml": billing}
    assert deploy.problems(files) == []
    broken = billing.replace("INT(amount) > 100", "INT(amount) >")
    problems = deploy.problems({**files, "config/subscriptions/billing.yaml": broken})
    assert len(problems) == 1
    assert problems[0].startswith(
        "config/subscriptions/billing.yaml:11: subscriptions[0].filters[2].sql: invalid CESQL at 1:"
    )


def test_every_problem_is_reported_with_file_line_and_path(deploy: Deployer) -> None:
    problems = deploy.problems(
        {
            "config/gateway.yaml": """\
            server:
              port: eighty
              hots: 0.0.0.0
            store: mysql://db/gw
            validation: {unknown_types: maybe}
            dedupe_window: soon
            """,
            "config/subscriptions/billing.yaml": """\
            subscriptions:
              - name: billing
                sink: https://billing.internal/hooks/events
                delivery:
                  mode: batched
                  timeout: 0s
                  max_in_flight: 0
                  retry:
                    backoff: random
                    jitter: 2
                  retires: 3
                headers: {Content-Type: text/plain, X-Ok: yes}
                signing: {secret: whsec_c2hvcnQ=}
              - name: Billing
                sink: /relative
                types: []
                delivery:
                  retry:
                    max_attempts: 0
            """,
        }
    )
    assert problems == [
        "config/gateway.yaml:2: server.port: must be an integer",
        "config/gateway.yaml:3: server.hots: unknown key 'hots' (did you mean 'host'?)",
        "config/gateway.yaml:4: store: unsupported store scheme 'mysql' (supported: sqlite, "
        "postgresql)",
        "config/gateway.yaml:5: validation.unknown_types: must be one of: accept, reject",
        "config/gateway.yaml:6: dedupe_window: must be a duration like 10s",
        "config/subscriptions/billing.yaml:5: subscriptions[0].delivery.mode: "
        "must be one of: binary, structured, batch",
        "config/subscriptions/billing.yaml:6: subscriptions[0].delivery.timeout: must be > 0",
        "config/subscriptions/billing.yaml:7: subscriptions[0].delivery.max_in_flight: "
        "must be >= 1",
        "config/subscriptions/billing.yaml:9: subscriptions[0].delivery.retry.backoff: "
        "must be one of: exponential, linear, fixed",
        "config/subscriptions/billing.yaml:10: subscriptions[0].delivery.retry.jitter: "
        "must be <= 1",
        "config/subscriptions/billing.yaml:11: subscriptions[0].delivery.retires: "
        "unknown key 'retires' (did you mean 'retry'?)",
        "config/subscriptions/billing.yaml:12: subscriptions[0].headers.Content-Type: "
        "header 'Content-Type' is set by the gateway and cannot be configured",
        "config/subscriptions/billing.yaml:12: subscriptions[0].headers.X-Ok: must be a string",
        "config/subscriptions/billing.yaml:13: subscriptions[0].signing.secret: "
        "must be 'whsec_' followed by the base64 of 24 to 64 random bytes",
        "config/subscriptions/billing.yaml:14: subscriptions[1].name: "
        "must match [a-z0-9][a-z0-9_-]* (lower-case)",
        "config/subscriptions/billing.yaml:15: subscriptions[1].sink: "
        "must be an absolute http(s), nats, amqp or mqtt URL",
        "config/subscriptions/billing.yaml:16: subscriptions[1].types: "
        "must list at least one type (omit it to accept any type)",
        "config/subscriptions/billing.yaml:19: subscriptions[1].delivery.retry.max_attempts: "
        "must be >= 1",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("subscriptions:\n  - name: a\n    sink: x: y\n", ":3: invalid YAML: mapping values"),
        ("subscriptions:\n  - name: a\n\tsink: x\n", ":3: invalid YAML: "),
        ("subscriptions: [1, 2\n", ":2: invalid YAML: "),
        ("- just a list\n", ":1: must be a mapping"),
        (
            "subscription:\n  - {}\n",
            ":1: subscription: unknown key 'subscription' (did you mean 'subscriptions'?)",
        ),
        ("subscriptions: {name: a}\n", ":1: subscriptions: must be a list"),
        (
            "subscriptions:\n  - sink: http://x/\n",
            ":2: subscriptions[0]: missing required key 'name'",
        ),
        ("subscriptions:\n  - name: a\n", ":2: subscriptions[0]: missing required key 'sink'"),
        ("subscriptions:\n  - just-a-name\n", ":2: subscriptions[0]: must be a mapping"),
        (
            "subscriptions:\n  - name: a\n    sink: ftp://x/\n",
            ":3: subscriptions[0].sink: must be an absolute http(s), nats, amqp or mqtt URL",
        ),
        (
            "subscriptions:\n  - name: a\n    sink: http://x/\n    filters:\n"
            "      - exact: {type: a}\n      - any: []\n",
            ":6: subscriptions[0].filters[1].any: 'any' must be a non-empty list of filters",
        ),
        (
            "subscriptions:\n  - name: a\n    sink: http://x/\n    filters:\n"
            "      - any:\n          - exact: {type: a}\n          - exact: {type: ''}\n",
            ":7: subscriptions[0].filters[0].any[1].exact.type: must not be empty",
        ),
        (
            "subscriptions:\n  - name: a\n    sink: http://x/\n    auth: {bearer: x, token: y}\n",
            ":4: subscriptions[0].auth.token: unknown key 'token'",
        ),
        (
            "subscriptions:\n  - name: a\n    sink: http://x/\n    signing:\n"
            f"      secrets:\n        - {WHSEC}\n        - whsec_short\n",
            ":7: subscriptions[0].signing.secrets[1]: must be 'whsec_' followed by the base64",
        ),
        (
            "subscriptions:\n  - name: a\n    sink: http://x/\n    signing:\n"
            f"      secret: {WHSEC}\n      secrets: [{WHSEC}]\n",
            ":4: subscriptions[0].signing: needs exactly one of 'secret' or 'secrets'",
        ),
        (
            "subscriptions:\n  - name: a\n    sink: http://x/\n    signing: {secrets: []}\n",
            ":4: subscriptions[0].signing.secrets: must list at least one secret",
        ),
        (
            "subscriptions:\n  - name: a\n    sink: http://x/\n    delivery:\n"
            "      retry: {schedule: [5s, soon]}\n",
            ":5: subscriptions[0].delivery.retry.schedule[1]: must be a duration like 10s",
        ),
        # The sender's own parser: numeric host forms it refuses are refused here too.
        (
            "subscriptions:\n  - name: a\n    sink: http://2130706433/x\n",
            ":3: subscriptions[0].sink: host '2130706433' is a numeric form the sender refuses",
        ),
        (
            "subscriptions:\n  - name: a\n    sink: http://127.1/x\n",
            ":3: subscriptions[0].sink: host '127.1' is a numeric form the sender refuses",
        ),
        (
            "subscriptions:\n  - name: a\n    sink: http://127.0.0.1/x\n    delivery:\n"
            "      dead_letter: http://0177.0.0.1/dead\n",
            ":5: subscriptions[0].delivery.dead_letter: host '0177.0.0.1' is a numeric form",
        ),
        (
            "subscriptions:\n  - name: a\n    sink: http://ex ample/x\n",
            ":3: subscriptions[0].sink: must not contain spaces or control characters",
        ),
        (
            "subscriptions:\n  - name: a\n    sink: https://u:pw@x.test/\n"
            "    auth: {bearer: t}\n",
            ":4: subscriptions[0].auth: sink has user:password@ (sent as Basic auth) and "
            "auth.bearer also sets Authorization",
        ),
        (
            "subscriptions:\n  - name: a\n    sink: https://x.test/\n    delivery:\n"
            "      dead_letter: https://u@x.test/dead\n    auth: {bearer: t}\n",
            ":6: subscriptions[0].auth: delivery.dead_letter has user:password@",
        ),
    ],
)
def test_broken_subscription_files(deploy: Deployer, text: str, expected: str) -> None:
    problems = deploy.problems({"config/gateway.yaml": "", "config/subscriptions/s.yaml": text})
    assert len(problems) == 1, problems
    assert problems[0].startswith("config/subscriptions/s.yaml" + expected)


def test_a_sink_with_user_info_and_no_auth_is_fine(deploy: Deployer) -> None:
    text = "subscriptions:\n  - name: a\n    sink: https://u:pw@x.test/\n"
    assert deploy.problems({"config/gateway.yaml": "", "config/subscriptions/s.yaml": text}) == []


def test_duplicate_names_across_files_point_at_the_second(deploy: Deployer) -> None:
    problems = deploy.problems(
        {
            "config/gateway.yaml": "",
            "config/subscriptions/a.yaml": MINIMAL_SUB,
            "config/subscriptions/b.yaml": "# second\n" + MINIMAL_SUB,
        }
    )
    assert problems == [
        "config/subscriptions/b.yaml:3: subscriptions[0].name: duplicate subscription name 'a' "
        "(first at config/subscriptions/a.yaml:2)"
    ]


def test_load_raises_every_problem(deploy: Deployer) -> None:
    path = deploy(
        {
            "config/gateway.yaml": "server: {port: -1}\nretention: forever\n",
            "config/subscriptions/a.yaml": "subscriptions:\n  - name: a\n",
        }
    )
    with pytest.raises(ConfigError) as caught:
        load(path, {})
    assert [(p.file, p.line, p.path) for p in caught.value.problems] == [
        ("config/gateway.yaml", 1, "server.port"),
        ("config/gateway.yaml", 2, "retention"),
        ("config/subscriptions/a.yaml", 2, "subscriptions[0]"),
    ]


def test_missing_gateway_file(deploy: Deployer) -> None:
    config, problems = collect(Path("config/gateway.yaml"), {})
    assert config is None
    assert [str(p) for p in problems] == ["config/gateway.yaml: file not found"]


# ${VAR} expansion ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "env", "sink"),
    [
        ("http://${HOST}/hook", {"HOST": "h.example"}, "http://h.example/hook"),
        ("http://${HOST:-localhost:9001}/hook", {}, "http://localhost:9001/hook"),
        ("http://${HOST:-localhost}/hook", {"HOST": ""}, "http://localhost/hook"),  # as sh does
        ("http://${HOST:-localhost}/hook", {"HOST": "h"}, "http://h/hook"),
        ("http://${A}${B}/${A}", {"A": "a", "B": "b"}, "http://ab/a"),
        ("http://h/$${literal}", {}, "http://h/${literal}"),
        ("http://h/$HOME", {"HOME": "x"}, "http://h/$HOME"),  # only ${...} is expanded
        ("http://h/?q=${Q:-}", {}, "http://h/?q="),
    ],
)
def test_env_expansion(deploy: Deployer, written: str, env: dict[str, str], sink: str) -> None:
    path = deploy(
        {
            "config/gateway.yaml": "",
            "config/subscriptions/s.yaml": f'subscriptions:\n  - name: a\n    sink: "{written}"\n',
        }
    )
    assert load(path, env).subscriptions[0].sink == sink


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("${MISSING}", "environment variable MISSING is not set (and has no default)"),
        ("x${MISSING}y${OTHER:-z}", "environment variable MISSING is not set (and has no default)"),
        ("${NOT CLOSED", "'${' without a closing '}'"),
        ("${1BAD}", "invalid variable reference: write ${NAME} or ${NAME:-default}"),
        ("${A-b}", "invalid variable reference: write ${NAME} or ${NAME:-default}"),
    ],
)
def test_env_expansion_problems_name_the_key(deploy: Deployer, written: str, message: str) -> None:
    problems = deploy.problems(
        {
            "config/gateway.yaml": "",
            "config/subscriptions/s.yaml": f'subscriptions:\n  - name: a\n    sink: "{written}"\n',
        },
        env={},
    )
    assert problems == [f"config/subscriptions/s.yaml:3: subscriptions[0].sink: {message}"]


def test_numbers_and_durations_from_variables(deploy: Deployer) -> None:
    path = deploy(
        {
            "config/gateway.yaml": """\
            server: {port: "${PORT:-9000}", shutdown_grace: "${GRACE:-3s}"}
            dispatch: {max_in_flight: "${MAX}"}
            defaults: {delivery: {retry: {jitter: "${JITTER}"}}}
            """,
            "config/subscriptions/s.yaml": MINIMAL_SUB,
        }
    )
    config = load(path, {"MAX": "12", "JITTER": "0.5"})
    assert (config.server.port, config.server.shutdown_grace) == (9000, 3.0)
    assert config.dispatch.max_in_flight == 12
    assert config.subscriptions[0].delivery.retry.jitter == 0.5


def test_quoted_numbers_written_literally_are_not_numbers(deploy: Deployer) -> None:
    problems = deploy.problems({"config/gateway.yaml": 'server: {port: "8080"}\n'})
    assert problems == ["config/gateway.yaml:1: server.port: must be an integer"]


def test_keys_are_not_expanded(deploy: Deployer) -> None:
    path = deploy(
        {
            "config/gateway.yaml": "",
            "config/subscriptions/s.yaml": MINIMAL_SUB + '    headers: {"X-${H}": v}\n',
        }
    )
    _, problems = collect(path, {"H": "Team"})
    assert [p.message for p in problems] == ["is not a valid header name"]


def test_secrets_never_appear_in_messages(deploy: Deployer) -> None:
    secret = "whsec_TOP-SECRET-VALUE"
    problems = deploy.problems(
        {
            "config/gateway.yaml": "store: ${DB}\nproducers:\n  - {name: a, token: '${T}'}\n"
            "  - {name: b, token: [x, '${T}']}\n",
            "config/subscriptions/s.yaml": MINIMAL_SUB + "    signing: {secret: '${S}'}\n"
            "    auth: {bearer: {nested: '${S}'}}\n    delivery: {timeout: '${S}'}\n",
        },
        env={"S": secret, "T": "TOP-SECRET-TOKEN", "DB": "TOP-SECRET-DB"},
    )
    assert len(problems) == 5, problems
    assert not any("TOP-SECRET" in p for p in problems)


# Defaults ------------------------------------------------------------------------------------


def test_delivery_merges_over_defaults_key_by_key(deploy: Deployer) -> None:
    path = deploy(
        {
            "config/gateway.yaml": """\
            defaults:
              delivery:
                mode: structured
                timeout: 3s
                dead_letter: http://127.0.0.1:9009/dead
                retry: {max_attempts: 4, backoff: linear, max_delay: 5m}
              headers: {X-Gateway: shop, X-Team: none}
            """,
            "config/subscriptions/s.yaml": """\
            subscriptions:
              - name: inherits
                sink: http://127.0.0.1:9001/
              - name: overrides
                sink: http://127.0.0.1:9002/
                delivery:
                  timeout: 30s
                  dead_letter: null
                  retry: {backoff: fixed, initial_delay: 250ms}
                headers: {x-team: billing}
            """,
        }
    )
    inherits, overrides = load(path, {}).subscriptions
    assert inherits.delivery.mode is Mode.STRUCTURED
    assert inherits.delivery.timeout == 3.0
    assert inherits.delivery.dead_letter == "http://127.0.0.1:9009/dead"
    assert inherits.delivery.retry.max_attempts == 4
    assert inherits.delivery.retry.initial_delay == 1.0  # the model default
    assert inherits.headers == (("X-Gateway", "shop"), ("X-Team", "none"))
    assert overrides.delivery.mode is Mode.STRUCTURED
    assert overrides.delivery.timeout == 30.0
    assert overrides.delivery.dead_letter is None
    assert overrides.delivery.retry.backoff is Backoff.FIXED
    assert overrides.delivery.retry.max_attempts == 4
    assert overrides.delivery.retry.max_delay == 300.0
    assert overrides.delivery.retry.initial_delay == 0.25
    assert overrides.headers == (("X-Gateway", "shop"), ("x-team", "billing"))


@pytest.mark.parametrize(
    ("defaults", "own", "attempts"),
    [
        ("{}", "{schedule: [5s, 5m, 30m]}", 4),  # len(schedule) + 1
        ("{max_attempts: 8}", "{schedule: [5s, 5m, 30m]}", 4),  # the schedule's own layer counts
        ("{}", "{schedule: [5s], max_attempts: 6}", 6),
        ("{schedule: [1s, 2s]}", "{}", 3),
        ("{schedule: [1s, 2s], max_attempts: 5}", "{}", 5),
        ("{schedule: [1s, 2s]}", "{max_attempts: 9}", 9),
        ("{max_attempts: 8}", "{}", 8),
        ("{}", "{}", 8),  # the model default
    ],
)
def test_schedule_sets_attempts(deploy: Deployer, defaults: str, own: str, attempts: int) -> None:
    path = deploy(
        {
            "config/gateway.yaml": f"defaults: {{delivery: {{retry: {defaults}}}}}\n",
            "config/subscriptions/s.yaml": MINIMAL_SUB + f"    delivery: {{retry: {own}}}\n",
        }
    )
    assert load(path, {}).subscriptions[0].delivery.retry.max_attempts == attempts


def test_a_bad_default_is_reported_once_in_gateway_yaml(deploy: Deployer) -> None:
    problems = deploy.problems(
        {
            "config/gateway.yaml": "defaults:\n  delivery:\n    timeout: -1s\n",
            "config/subscriptions/s.yaml": MINIMAL_SUB
            + MINIMAL_SUB.replace("subscriptions:\n", "").replace("name: a", "name: b"),
        }
    )
    assert problems == [
        "config/gateway.yaml:3: defaults.delivery.timeout: must be a duration like 10s"
    ]


# Store, paths and discovery -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("store", "url"),
    [
        ("sqlite:///data/gw.db", "sqlite:///{root}/config/data/gw.db"),
        (
            "sqlite:///../data/gw.db?synchronous=full",
            "sqlite:///{root}/data/gw.db?synchronous=full",
        ),
        ("sqlite:////var/lib/gw.db", "sqlite:////var/lib/gw.db"),
        ("sqlite://:memory:", "sqlite://:memory:"),
        ("postgresql://gw@db.internal/gateway", "postgresql://gw@db.internal/gateway"),
    ],
)
def test_store_urls(deploy: Deployer, store: str, url: str) -> None:
    config = load(deploy({"config/gateway.yaml": f"store: '{store}'\n"}), {})
    assert config.store == store
    assert config.store_url == url.format(root=deploy.root.resolve())


@pytest.mark.parametrize(
    ("store", "message"),
    [
        ("mysql://db/gw", "unsupported store scheme 'mysql' (supported: sqlite, postgresql)"),
        ("data/gw.db", "must be a URL like sqlite:///data/gateway.db or postgresql://..."),
        ("sqlite://", "must be sqlite:///relative/file.db or sqlite:////absolute/file.db"),
        (
            "sqlite://host/gw.db",
            "must be sqlite:///relative/file.db or sqlite:////absolute/file.db",
        ),
        ("''", "must not be empty"),
    ],
)
def test_bad_store_urls(deploy: Deployer, store: str, message: str) -> None:
    problems = deploy.problems({"config/gateway.yaml": f"store: {store}\n"})
    assert problems == [f"config/gateway.yaml:1: store: {message}"]


def test_subscription_files_from_a_list_of_globs(deploy: Deployer) -> None:
    path = deploy(
        {
            "config/gateway.yaml": "subscriptions:\n"
            "  [teams/*.yaml, extra.yml, teams/b.yaml, none/*.yaml]\n",
            "config/teams/b.yaml": MINIMAL_SUB.replace("name: a", "name: b"),
            "config/teams/a.yaml": MINIMAL_SUB,
            "config/teams/ignored.txt": "not yaml",
            "config/extra.yml": MINIMAL_SUB.replace("name: a", "name: c"),
        }
    )
    _, problems = collect(path, {})
    assert [str(p) for p in problems] == [
        "config/gateway.yaml:2: subscriptions[3]: matches no file"
    ]
    path.write_text("subscriptions: [teams/*.yaml, extra.yml, teams/b.yaml]\n")
    assert [s.name for s in load(path, {}).subscriptions] == ["a", "b", "c"]


def test_subscriptions_folder_is_sorted_and_a_missing_one_is_empty(deploy: Deployer) -> None:
    path = deploy(
        {
            "config/gateway.yaml": "",
            "config/subscriptions/20-b.yml": MINIMAL_SUB.replace("name: a", "name: b"),
            "config/subscriptions/10-a.yaml": MINIMAL_SUB,
            "config/subscriptions/.hidden.yaml": "broken: [",
        }
    )
    assert [s.name for s in load(path, {}).subscriptions] == ["a", "b"]
    path.write_text("subscriptions: elsewhere/\n")
    assert load(path, {}).subscriptions == ()


def test_tls_producers_and_dispatch(deploy: Deployer, tmp_path: Path) -> None:
    (tmp_path / "ca").mkdir()
    pair = Authority(tmp_path / "ca").issue("127.0.0.1", server=True)
    path = deploy(
        {
            "config/gateway.yaml": """\
            server:
              host: 0.0.0.0
              tls: {cert: tls/cert.pem, key: tls/key.pem}
            producers:
              - {name: shop, token: [a, b], types: ["com.example.*"]}
              - {name: crm, token: c}
            dispatch: {max_in_flight: 8, poll_interval: 250ms, backlog_high_water: 100}
            """,
            "config/tls/cert.pem": pair.cert.read_text(),
            "config/tls/key.pem": pair.key.read_text(),
        }
    )
    config = load(path, {})
    assert config.server.tls is not None
    assert config.server.tls.cert == Path("config/tls/cert.pem")
    assert config.server.tls.client_ca is None
    assert [(p.name, p.tokens, p.types) for p in config.producers] == [
        ("shop", ("a", "b"), ("com.example.*",)),
        ("crm", ("c",), ()),
    ]
    assert (config.dispatch.max_in_flight, config.dispatch.poll_interval) == (8, 0.25)
    assert config.dispatch.purge_interval == 60.0


def test_bad_tls_and_producers(deploy: Deployer) -> None:
    problems = deploy.problems(
        {
            "config/gateway.yaml": """\
            server:
              tls: {cert: missing.pem}
            producers:
              - {name: a, token: same}
              - {name: a, token: same, source: [x]}
              - {token: []}
            """,
        }
    )
    assert problems == [
        "config/gateway.yaml:2: server.tls.cert: file not found",
        "config/gateway.yaml:2: server.tls: missing required key 'key'",
        "config/gateway.yaml:5: producers[1].source: unknown key 'source' (did you mean "
        "'sources'?)",
        "config/gateway.yaml:5: producers[1].name: duplicate producer name 'a'",
        "config/gateway.yaml:5: producers[1].token: the same token is given to producer 'a'",
        "config/gateway.yaml:6: producers[2]: missing required key 'name'",
        "config/gateway.yaml:6: producers[2].token: must list at least one token",
    ]


def test_the_example_deployment_loads_and_routes() -> None:
    root = Path(__file__).resolve().parents[2]
    config = load(root / "config" / "gateway.yaml", {})
    assert {s.name for s in config.subscriptions} >= {"billing", "warehouse", "analytics"}
    order = Event(
        {"specversion": "1.0", "id": "1", "source": "/shop", "type": "com.example.order.shipped"}
    )
    assert {s.name for s in config.subscriptions if match(s, order)} == {"warehouse", "analytics"}


# Durations -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250ms", 0.25), ("10s", 10.0), ("5m", 300.0), ("2h", 7200.0), ("1d", 86_400.0),
        ("1.5s", 1.5), ("1h30m", 5400.0), ("0s", 0.0), ("30", 30.0), ("2.5", 2.5), (" 7s ", 7.0),
    ],
)  # fmt: skip
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "s", "-1s", "10 s", "1w", "1h30", "ms", "1e3s", "1.s"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_egress_policy(deploy: Deployer) -> None:
    path = deploy(
        {
            "config/gateway.yaml": """\
            egress:
              allow: [10.1.0.0/16]
              deny: [10.0.0.0/8, "fd00::/8", 192.0.2.7]
              deny_private: true
            """,
        }
    )
    egress = load(path, {}).egress
    assert [str(n) for n in egress.allow] == ["10.1.0.0/16"]
    assert [str(n) for n in egress.deny] == ["10.0.0.0/8", "fd00::/8", "192.0.2.7/32"]
    assert egress.deny_private is True
    assert load(deploy({"config/gateway.yaml": ""}), {}).egress.deny_private is False


def test_bad_egress_policy(deploy: Deployer) -> None:
    problems = deploy.problems(
        {
            "config/gateway.yaml": """\
            egress:
              deny: [10.0.0.0/8, metadata]
              deny_private: yes please
              block: []
            """,
        }
    )
    assert problems == [
        "config/gateway.yaml:2: egress.deny[1]: must be an IP address or CIDR range like "
        "10.0.0.0/8",
        "config/gateway.yaml:3: egress.deny_private: must be true or false",
        "config/gateway.yaml:4: egress.block: unknown key 'block'",
    ]


def test_delivery_control_keys(deploy: Deployer) -> None:
    path = deploy(
        {
            "config/gateway.yaml": "defaults:\n  delivery:\n    rate_limit: 300/m\n",
            "config/subscriptions/s.yaml": """\
            subscriptions:
              - name: defaults
                sink: http://127.0.0.1:9001/
              - name: tuned
                sink: http://127.0.0.1:9002/
                delivery:
                  rate_limit: 50/s
                  circuit_breaker: {failures: 3, cooldown: 5s}
              - name: disabled
                sink: http://127.0.0.1:9003/
                delivery:
                  circuit_breaker: off
              - name: enabled
                sink: http://127.0.0.1:9004/
                delivery:
                  circuit_breaker: {}
            """,
        }
    )
    subs = {s.name: s.delivery for s in load(path, ENV).subscriptions}
    assert subs["defaults"].rate_limit == 5.0
    assert subs["defaults"].circuit_breaker == CircuitBreaker(10, 30.0)
    assert subs["tuned"].rate_limit == 50.0
    assert subs["tuned"].circuit_breaker == CircuitBreaker(3, 5.0)
    assert subs["disabled"].circuit_breaker is None
    assert subs["enabled"].circuit_breaker == CircuitBreaker()


@pytest.mark.parametrize(
    ("delivery", "expected"),
    [
        ("rate_limit: 50", "rate_limit: must be a string"),
        ("rate_limit: 50/h", "rate_limit: must be a rate like 50/s or 300/m"),
        ("rate_limit: 0/s", "rate_limit: must be more than 0"),
        ("circuit_breaker: {failures: 0}", "circuit_breaker.failures: must be >= 1"),
        ("circuit_breaker: {cooldown: 0s}", "circuit_breaker.cooldown: must be > 0"),
        ("circuit_breaker: {probes: 2}", "circuit_breaker.probes: unknown key 'probes'"),
    ],
)
def test_bad_delivery_control_keys(deploy: Deployer, delivery: str, expected: str) -> None:
    head = "subscriptions:\n  - name: a\n    sink: http://127.0.0.1/\n    delivery:\n"
    text = f"{head}      {delivery}\n"
    problems = deploy.problems({"config/gateway.yaml": "", "config/subscriptions/s.yaml": text})
    assert len(problems) == 1, problems
    assert expected in problems[0], problems
