"""The schema registry: loading a schemas folder (offline `$ref`s, drafts, YAML, problems with
lines) and judging event data (dataschema versions, unknown types, every violation by pointer)."""

from __future__ import annotations

import json
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.diagnostics import Problem
from gateway.errors import SchemaViolation, Violation
from gateway.event import UNPARSED, DataKind, Event
from gateway.schemas import SchemaRegistry, Verdict

ROOT = Path(__file__).resolve().parents[2]
V1 = "https://schemas.test/order.created/v1"
V2 = "https://schemas.test/order.created/v2"
MONEY = "https://schemas.test/common/money"

# A folder exercising every way to reach another file: relative to the `$id`, absolute by `$id`,
# relative to the file's location (no `$id`), and by location from a file with an `$id`.
SHOP: dict[str, str] = {
    "common/money.json": json.dumps(
        {
            "$id": MONEY,
            "type": "object",
            "required": ["amount", "currency"],
            "properties": {
                "amount": {"$ref": "#/$defs/cents"},
                "currency": {"$ref": "#/$defs/currency"},
            },
            "$defs": {
                "cents": {"type": "integer", "minimum": 0},
                "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
            },
        }
    ),
    "com.test.order.created.json": json.dumps(
        {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": V1,
            "type": "object",
            "required": ["order_id", "items", "amount"],
            "properties": {
                "order_id": {"type": "string"},
                "email": {"type": "string", "format": "email"},
                "created_at": {"type": "string", "format": "date-time"},
                "amount": {"$ref": "../common/money#/$defs/cents"},
                "currency": {"$ref": f"{MONEY}#/$defs/currency"},
                "items": {"type": "array", "items": {"$ref": "#/$defs/item"}},
                "a/b": {"type": "integer"},
                "t~": {"type": "integer"},
            },
            "$defs": {
                "item": {
                    "type": "object",
                    "required": ["sku", "quantity"],
                    "properties": {
                        "sku": {"type": "string"},
                        "quantity": {"type": "integer", "minimum": 1},
                    },
                    "additionalProperties": False,
                }
            },
        }
    ),
    "_versions/com.test.order.created.v2.yaml": textwrap.dedent(
        f"""\
        $id: {V2}
        type: object
        required: [order_id, total]
        properties:
          order_id: {{type: string}}
          total: {{$ref: "{MONEY}"}}
        """
    ),
    "legacy/com.test.legacy.json": json.dumps(
        {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "array",
            "items": [{"type": "string"}, {"$ref": "../common/money.json#/$defs/cents"}],
        }
    ),
    "com.test.refund.yml": textwrap.dedent(
        """\
        $id: https://elsewhere.test/refund
        type: object
        properties:
          refund: {$ref: "common/money.json"}
        """
    ),
}


def write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def shop(tmp_path: Path) -> SchemaRegistry:
    registry, problems = SchemaRegistry.load(write(tmp_path / "schemas", SHOP))
    assert problems == []
    return registry


def event(
    type_: str = "com.test.order.created",
    data: Any = None,
    *,
    kind: DataKind = DataKind.JSON,
    dataschema: str | None = None,
    raw: bytes | None = None,
    parsed: bool = True,
) -> Event:
    attributes: dict[str, str | int | bool] = {
        "specversion": "1.0",
        "id": "1",
        "source": "/shop",
        "type": type_,
    }
    if dataschema is not None:
        attributes["dataschema"] = dataschema
    if kind is DataKind.JSON and raw is None:
        raw = orjson.dumps(data)
    value = data if kind is DataKind.JSON and parsed else UNPARSED
    return Event(attributes, raw, kind, value)


ORDER = {"order_id": "o1", "items": [{"sku": "A-1", "quantity": 2}], "amount": 1250}


def test_types_follow_file_names_and_skip_definitions(shop: SchemaRegistry) -> None:
    assert shop.types() == {"com.test.order.created", "com.test.legacy", "com.test.refund"}


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        pytest.param(event(data=ORDER), Verdict(True, V1), id="v1 valid"),
        pytest.param(
            event(data={**ORDER, "email": "a@b.example", "created_at": "2024-05-01T10:00:00Z"}),
            Verdict(True, V1),
            id="formats that hold",
        ),
        pytest.param(
            event(
                data={"order_id": "o1", "total": {"amount": 5, "currency": "EUR"}}, dataschema=V2
            ),
            Verdict(True, V2),
            id="dataschema selects v2 (a YAML file)",
        ),
        pytest.param(
            event(data=ORDER, dataschema=V2),
            Verdict(False, V2, (Violation("", '"total" is a required property'),)),
            id="v1 data fails v2",
        ),
        pytest.param(
            event(data=ORDER, dataschema=V2 + "#"),
            Verdict(False, V2, (Violation("", '"total" is a required property'),)),
            id="empty fragment ignored",
        ),
        pytest.param(
            event(data=ORDER, dataschema="https://schemas.test/unknown"),
            Verdict(True, V1),
            id="unknown dataschema falls back to type",
        ),
        pytest.param(
            event(data={"amount": 3, "currency": "EUR"}, type_="com.other", dataschema=MONEY),
            Verdict(True, MONEY),
            id="dataschema wins over type",
        ),
        pytest.param(
            event("com.test.legacy", ["x", 4]),
            Verdict(True, "legacy/com.test.legacy.json"),
            id="draft-07 tuple items, no $id",
        ),
        pytest.param(
            event("com.test.legacy", ["x", -4]),
            Verdict(
                False,
                "legacy/com.test.legacy.json",
                (Violation("/1", "-4 is less than the minimum of 0"),),
            ),
            id="draft-07 ref by file location",
        ),
        pytest.param(
            event("com.test.refund", {"refund": {"amount": 1, "currency": "eur"}}),
            Verdict(
                False,
                "https://elsewhere.test/refund",
                (Violation("/refund/currency", '"eur" does not match "^[A-Z]{3}$"'),),
            ),
            id="ref by location from a file with $id",
        ),
        pytest.param(
            event(data=ORDER, parsed=False), Verdict(True, V1), id="unparsed value is parsed"
        ),
        pytest.param(
            event(kind=DataKind.JSON, raw=b"{not json", parsed=False),
            Verdict(False, V1, (Violation("", "data is not valid JSON: "),)),
            id="stored data that is not JSON",
        ),
        pytest.param(
            event(kind=DataKind.NONE),
            Verdict(False, V1, (Violation("", f"data is required by schema {V1}"),)),
            id="no data",
        ),
        pytest.param(
            event(kind=DataKind.TEXT, raw=b"hello"),
            Verdict(False, V1, (Violation("", "data is not JSON"),)),
            id="text data",
        ),
        pytest.param(
            event(kind=DataKind.BINARY, raw=b"\x00\x01"),
            Verdict(False, V1, (Violation("", "data is not JSON"),)),
            id="binary data",
        ),
        pytest.param(event("com.unknown", {"x": 1}), Verdict(True, None), id="unknown type"),
    ],
)
def test_verdict(shop: SchemaRegistry, case: Event, expected: Verdict) -> None:
    got = shop.verdict(case)
    assert (got.valid, got.schema) == (expected.valid, expected.schema)
    assert [e.pointer for e in got.errors] == [e.pointer for e in expected.errors]
    for error, wanted in zip(got.errors, expected.errors, strict=True):
        assert error.detail.startswith(wanted.detail)


def test_every_violation_listed_with_escaped_pointers_in_order(shop: SchemaRegistry) -> None:
    items = [{"sku": "A", "quantity": 1}] * 10 + [{"quantity": 0, "colour": "red"}]
    items[2] = {"sku": 7, "quantity": 1}
    data = {
        "items": items,
        "amount": -5,
        "email": "not an email",
        "created_at": "yesterday",
        "a/b": "x",
        "t~": "y",
    }
    verdict = shop.verdict(event(data=data))
    assert not verdict.valid
    assert [(e.pointer, e.detail) for e in verdict.errors] == [
        ("", '"order_id" is a required property'),
        ("/a~1b", '"x" is not of type "integer"'),
        ("/amount", "-5 is less than the minimum of 0"),
        ("/created_at", '"yesterday" is not a "date-time"'),
        ("/email", '"not an email" is not a "email"'),
        ("/items/2/sku", '7 is not of type "string"'),
        ("/items/10", '"sku" is a required property'),
        ("/items/10/colour", "property 'colour' is not allowed"),
        ("/items/10/quantity", "0 is less than the minimum of 1"),
        ("/t~0", '"y" is not of type "integer"'),
    ]


def test_validate_raises_422_with_every_violation(shop: SchemaRegistry) -> None:
    with pytest.raises(SchemaViolation) as caught:
        shop.validate(event(data={"items": [], "amount": "x"}))
    problem = caught.value.problem()
    assert problem["status"] == 422
    assert V1 in problem["detail"]
    assert problem["errors"] == [
        {"pointer": "", "detail": '"order_id" is a required property'},
        {"pointer": "/amount", "detail": '"x" is not of type "integer"'},
    ]
    shop.validate(event(data=ORDER))  # valid data raises nothing


@pytest.mark.parametrize(
    ("unknown_types", "valid", "errors"),
    [
        ("accept", True, []),
        ("reject", False, [Violation("", "no schema for type com.unknown")]),
    ],
)
def test_unknown_types(
    shop: SchemaRegistry, unknown_types: str, valid: bool, errors: list[Violation]
) -> None:
    unknown = event("com.unknown", {"x": 1})
    verdict = shop.verdict(unknown, unknown_types)
    assert verdict == Verdict(valid, None, tuple(errors))
    if valid:
        shop.validate(unknown, unknown_types)
    else:
        with pytest.raises(SchemaViolation, match=r"no schema for type com\.unknown") as caught:
            shop.validate(unknown, unknown_types)
        assert caught.value.errors == tuple(errors)
    # a governed type is judged whatever the setting
    assert shop.verdict(event(data=ORDER), unknown_types).valid


def test_unknown_types_setting_must_be_known(shop: SchemaRegistry) -> None:
    with pytest.raises(ValueError, match="unknown_types"):
        shop.verdict(event("com.unknown", {}), "ignore")


GOOD = '{"type": "object"}'


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        pytest.param(
            {"com.a.json": '{\n  "type": "object",\n  "properties": {\n    "x": 1,,\n  }\n}'},
            [("com.a.json", 4, "malformed JSON")],
            id="malformed JSON",
        ),
        pytest.param(
            {"com.a.yaml": "type: object\nproperties:\n  x: [1, 2\n  y: 3\n"},
            [("com.a.yaml", 4, "malformed YAML")],
            id="malformed YAML",
        ),
        pytest.param(
            {
                "com.a.json": '{\n  "type": "object",\n  "properties": {\n'
                '    "x": {"type": "objekt"}\n  }\n}'
            },
            [("com.a.json", 4, "invalid schema: 'objekt' is not valid")],
            id="invalid against meta-schema",
        ),
        pytest.param(
            {"com.a.yaml": "type: object\nproperties:\n  x:\n    minimum: ten\n"},
            [("com.a.yaml", 4, "invalid schema: 'ten' is not of type 'number'")],
            id="invalid YAML schema",
        ),
        pytest.param(
            {
                "com.a.json": '{"$schema": "http://json-schema.org/draft-07/schema#",\n'
                ' "items": [{"type": "string"}], "required": "x"}'
            },
            [("com.a.json", 2, "invalid schema: 'x' is not of type 'array'")],
            id="draft-07 meta-schema",
        ),
        pytest.param(
            {"com.a.json": '{"items": [{"type": "string"}]}'},
            [("com.a.json", 1, "is not of type 'object', 'boolean'")],
            id="draft-07 form under 2020-12",
        ),
        pytest.param(
            {"com.a.json": '{\n"$schema": "http://json-schema.org/draft-04/schema#"\n}'},
            [("com.a.json", 2, "unsupported $schema")],
            id="unsupported draft",
        ),
        pytest.param(
            {"com.a.yaml": "properties:\n  x:\n    pattern: '(unclosed'\n"},
            [("com.a.yaml", 3, 'invalid schema: "(unclosed" is not a "regex"')],
            id="pattern that is no regex",
        ),
        pytest.param(
            {
                "_p.yaml": "$id: https://s.test/p\n$defs:\n  x:\n    patternProperties:\n"
                "      '[z-a]': {}\n",
                "com.a.yaml": "properties:\n  a: {$ref: 'https://s.test/p#/$defs/x'}\n",
            },
            [("_p.yaml", 5, 'is not a "regex"')],
            id="bad regex in unused definitions, reported where it is",
        ),
        pytest.param(
            {"com.a.yaml": "type: object\nproperties:\n  x: {$ref: '#/$defs/missing'}\n"},
            [("com.a.yaml", 3, "unresolvable $ref '#/$defs/missing'")],
            id="pointer to nothing",
        ),
        pytest.param(
            {"com.a.yaml": "$id: https://s.test/a\nproperties:\n  x: {$ref: 'other.json'}\n"},
            [("com.a.yaml", 3, "no schema file has the URI https://s.test/other.json")],
            id="relative ref to no file",
        ),
        pytest.param(
            {
                "com.a.yaml": "properties:\n  x: {$ref: 'https://s.test/b#nope'}\n",
                "_b.yaml": "$id: https://s.test/b\n$defs: {y: {$anchor: here}}\n",
            },
            [("com.a.yaml", 2, "https://s.test/b has no anchor 'nope'")],
            id="unknown anchor",
        ),
        pytest.param(
            {
                "com.a.json": '{"$id": "https://s.test/same"}',
                "com.b.json": '{\n"$id": "https://s.test/same"}',
            },
            [("com.b.json", 2, "duplicate $id https://s.test/same")],
            id="duplicate $id",
        ),
        pytest.param(
            {"x/com.a.json": GOOD, "y/com.a.yaml": "type: object\n"},
            [("y/com.a.yaml", 0, "type com.a already has a schema")],
            id="two files for one type",
        ),
        pytest.param(
            {"com.a.yaml": "properties:\n  x:\n    const: 2024-01-01\n"},
            [("com.a.yaml", 3, "YAML timestamp, not JSON")],
            id="YAML value that is not JSON",
        ),
        pytest.param({"com.a.yaml": "\n"}, [("com.a.yaml", 0, "empty file")], id="empty"),
        pytest.param(
            {"com.a.json": "[1, 2]"}, [("com.a.json", 1, "must be an object")], id="not object"
        ),
        pytest.param(
            {"com.a.json": '{"minimum": 1e3, "maximum": NaN}'},
            [("com.a.json", 0, "NaN is not a JSON number")],
            id="NaN",
        ),
    ],
)
def test_load_problems(
    tmp_path: Path, files: dict[str, str], expected: list[tuple[str, int, str]]
) -> None:
    folder = write(tmp_path / "schemas", {**files, "com.fine.json": GOOD})
    registry, problems = SchemaRegistry.load(folder)
    got = [(Path(p.file).relative_to(folder).as_posix(), p.line, p.message) for p in problems]
    assert [(f, line) for f, line, _ in got] == [(f, line) for f, line, _ in expected]
    for (_, _, message), (_, _, wanted) in zip(got, expected, strict=True):
        assert wanted in message
    assert "com.fine" in registry.types()  # one bad file does not hide the others


def test_problem_names_file_inside_given_folder(tmp_path: Path) -> None:
    folder = write(tmp_path / "schemas", {"sub/com.a.yaml": "type: object\nminimum: x\n"})
    _, problems = SchemaRegistry.load(folder)
    assert problems == [
        Problem(
            str(folder / "sub" / "com.a.yaml"),
            2,
            "minimum",
            "invalid schema: 'x' is not of type 'number'",
        )
    ]


def test_yaml_number_forms_in_json_files_stay_numbers(tmp_path: Path) -> None:
    folder = write(tmp_path, {"com.a.json": '{"type": "number", "maximum": 1e3}'})
    registry, problems = SchemaRegistry.load(folder)
    assert problems == []
    assert registry.verdict(event("com.a", 999.5)).valid
    assert not registry.verdict(event("com.a", 1001)).valid


def test_file_referencing_a_broken_file_is_left_out_without_a_second_problem(
    tmp_path: Path,
) -> None:
    folder = write(
        tmp_path,
        {
            "common/money.json": '{"$id": "https://s.test/money", "type": "objekt"}',
            "com.a.json": '{"properties": {"m": {"$ref": "https://s.test/money"}}}',
            "com.b.json": GOOD,
        },
    )
    registry, problems = SchemaRegistry.load(folder)
    assert [Path(p.file).name for p in problems] == ["money.json"]
    assert registry.types() == {"com.b"}


class _Recorder(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:
        self.hits.append(self.path)
        body = b'{"type": "integer"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/schema+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def schema_server() -> Iterator[tuple[str, list[str]]]:
    """A real HTTP server that would serve any schema asked of it, recording every request."""
    hits: list[str] = []
    handler = type("Handler", (_Recorder,), {"hits": hits})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_remote_refs_are_problems_never_fetches(
    tmp_path: Path, schema_server: tuple[str, list[str]]
) -> None:
    base, hits = schema_server
    folder = write(
        tmp_path,
        {
            "com.a.yaml": f"type: object\nproperties:\n  n: {{$ref: '{base}/n.json'}}\n",
            "com.b.yaml": f"$schema: '{base}/meta'\ntype: object\n",
        },
    )
    registry, problems = SchemaRegistry.load(folder)
    assert [(Path(p.file).name, p.line) for p in problems] == [("com.a.yaml", 3), ("com.b.yaml", 1)]
    assert f"no schema file has the URI {base}/n.json" in problems[0].message
    assert "never fetched" in problems[0].message
    assert "unsupported $schema" in problems[1].message
    assert registry.types() == frozenset()
    assert hits == []


@pytest.mark.parametrize("make", ["missing", "empty"])
def test_no_schemas_folder_is_an_empty_registry(tmp_path: Path, make: str) -> None:
    folder = tmp_path / "schemas"
    if make == "empty":
        folder.mkdir()
        (folder / "README.md").write_text("not a schema")
        write(folder, {".hidden/com.a.json": "{broken"})
    registry, problems = SchemaRegistry.load(folder)
    assert (registry.types(), problems) == (frozenset(), [])
    assert registry.verdict(event("com.a", {})) == Verdict(True, None)


def test_schemas_path_that_is_a_file_is_a_problem(tmp_path: Path) -> None:
    path = tmp_path / "schemas"
    path.write_text("{}")
    _, problems = SchemaRegistry.load(path)
    assert [p.message for p in problems] == ["the schemas path is not a folder"]


# --- the example schemas shipped with the project ---------------------------------------------

SAMPLES: dict[str, tuple[str | None, dict[str, Any]]] = {
    "com.example.order.created": (
        None,
        {
            "order_id": "ord_8fK2mQ91",
            "customer": {"id": "cus_42", "email": "ada@example.com", "name": "Ada Lovelace"},
            "items": [
                {"sku": "MUG-BLUE-350", "quantity": 2, "price": 1250},
                {"sku": "TEE-M-BLACK", "quantity": 1, "price": 2400},
            ],
            "amount": 4900,
            "currency": "EUR",
            "created_at": "2024-05-01T10:15:00Z",
        },
    ),
    "com.example.order.paid": (
        None,
        {
            "order_id": "ord_8fK2mQ91",
            "amount": 4900,
            "currency": "EUR",
            "payment": {"method": "card", "transaction_id": "txn_991", "card_last4": "4242"},
            "paid_at": "2024-05-01T10:16:30+02:00",
        },
    ),
    "com.example.order.shipped": (
        None,
        {
            "order_id": "ord_8fK2mQ91",
            "shipment_id": "shp_7",
            "carrier": "dhl",
            "tracking_number": "JD0140",
            "tracking_url": "https://track.example/JD0140",
            "items": [{"sku": "MUG-BLUE-350", "quantity": 2}],
            "address": {
                "name": "Ada Lovelace",
                "line1": "12 St James's Square",
                "city": "London",
                "postal_code": "SW1Y 4JH",
                "country": "GB",
            },
            "shipped_at": "2024-05-02T08:00:00Z",
        },
    ),
    "com.example.order.created@v2": (
        "https://schemas.example.com/shop/order.created/v2",
        {
            "order_id": "ord_8fK2mQ91",
            "customer": {"id": "cus_42", "email": "ada@example.com"},
            "items": [
                {
                    "sku": "MUG-BLUE-350",
                    "quantity": 2,
                    "unit_price": {"amount": 1250, "currency": "EUR"},
                },
            ],
            "total": {"amount": 2500, "currency": "EUR"},
            "channel": "web",
            "created_at": "2024-05-01T10:15:00Z",
        },
    ),
}


@pytest.fixture(scope="module")
def examples() -> SchemaRegistry:
    registry, problems = SchemaRegistry.load(ROOT / "schemas")
    assert problems == []
    return registry


def test_example_schemas_govern_the_shop_types(examples: SchemaRegistry) -> None:
    assert examples.types() == {
        "com.example.order.created",
        "com.example.order.paid",
        "com.example.order.shipped",
    }


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_example_samples_are_valid_and_schemas_bite(examples: SchemaRegistry, name: str) -> None:
    dataschema, data = SAMPLES[name]
    type_ = name.split("@")[0]
    verdict = examples.verdict(event(type_, data, dataschema=dataschema))
    assert verdict.valid, verdict.errors
    assert verdict.schema is not None
    assert verdict.schema.startswith("https://schemas.example.com/")
    broken = examples.verdict(event(type_, {**data, "order_id": "42"}, dataschema=dataschema))
    assert [e.pointer for e in broken.errors] == ["/order_id"]


def test_example_v2_data_fails_v1(examples: SchemaRegistry) -> None:
    _, data = SAMPLES["com.example.order.created@v2"]
    verdict = examples.verdict(event("com.example.order.created", data))
    assert verdict.schema == "https://schemas.example.com/shop/order.created/v1"
    assert {e.pointer for e in verdict.errors} == {"", "/items/0", "/items/0/unit_price"}
