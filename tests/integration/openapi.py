"""Responses of the admin API checked against its OpenAPI document (`gateway/admin/openapi.json`):
each response schema is a JSON Schema 2020-12 (OpenAPI 3.1), resolved within the document."""

from __future__ import annotations

from importlib import resources
from typing import Any

import orjson
from jsonschema import Draft202012Validator

DOCUMENT: dict[str, Any] = orjson.loads(
    resources.files("gateway.admin").joinpath("openapi.json").read_bytes()
)


def _operation(operation_id: str) -> dict[str, Any]:
    for item in DOCUMENT["paths"].values():
        for operation in item.values():
            if operation.get("operationId") == operation_id:
                return dict(operation)
    raise KeyError(operation_id)


def check(operation_id: str, status: int, body: Any, content: str = "application/json") -> None:
    """Raise unless `body` is what the document says `operation_id` answers with `status`."""
    responses = _operation(operation_id)["responses"]
    assert str(status) in responses, f"{operation_id}: {status} is not documented"
    schema = responses[str(status)]["content"][content]["schema"]
    root = {**DOCUMENT, "$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
    Draft202012Validator(root, format_checker=Draft202012Validator.FORMAT_CHECKER).validate(body)
