"""The layers of README "Development", as import contracts (pyproject `[tool.importlinter]`).

import-linter reads the imports of every module of `gateway` (without running them) and checks
each contract; a second test adds, for each contract, one import it forbids to a copy of the
graph and expects that contract to break, so a contract that no longer bites fails too.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import grimp
import importlinter.api
import pytest
from importlinter.contracts.forbidden import ForbiddenContract
from importlinter.contracts.independence import IndependenceContract
from importlinter.domain.contract import Contract

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
TYPES: dict[str, type[Contract]] = {
    "forbidden": ForbiddenContract,
    "independence": IndependenceContract,
}
# For every contract, the imports it must refuse (importer, imported): one per forbidden layer.
BREAKERS = {
    "ground": [
        ("gateway.event", "gateway.attributes"),
        ("gateway.errors", "gateway.schemas.registry"),
        ("gateway.redact", "gateway.routing.router"),
        ("gateway.yamlpos", "gateway.config.model"),
        ("gateway.limits", "gateway.sources.kinds"),
        ("gateway.diagnostics", "gateway.percent"),
        ("gateway.egress", "gateway.store.base"),
        ("gateway.sinkurl", "gateway.ingest.http"),
        ("gateway.eventloop", "gateway.delivery.sender"),
    ],
    "core": [
        ("gateway.routing.filters", "gateway.config.model"),
        ("gateway.schemas.documents", "gateway.ingest.modes"),
        ("gateway.attributes", "gateway.delivery.render"),
        ("gateway.percent", "gateway.store.base"),
        ("gateway.sources.templates", "gateway.config.model"),
    ],
    "config": [
        ("gateway.config.sources", "gateway.ingest.sources.verify"),
        ("gateway.config.model", "gateway.delivery.retry"),
        ("gateway.config.loader", "gateway.store.base"),
    ],
    "store": [
        ("gateway.store.base", "gateway.config.model"),
        ("gateway.store.sqlite", "gateway.ingest.context"),
        ("gateway.store.base", "gateway.delivery.dispatcher"),
    ],
    "handlers": [
        ("gateway.ingest.http", "gateway.delivery.dispatcher"),
        ("gateway.delivery.dispatcher", "gateway.ingest.context"),
        # Through a holder: runtime imports the dispatcher.
        ("gateway.ingest.http", "gateway.runtime"),
    ],
}


def _contracts() -> dict[str, Contract]:
    config = importlinter.api.read_configuration(str(PYPROJECT))
    return {
        options["id"]: TYPES[options["type"]](
            name=options["name"],
            session_options=config["session_options"],
            contract_options=options,
        )
        for options in config["contracts_options"]
    }


@pytest.fixture(scope="module")
def graph() -> Any:
    return grimp.build_graph("gateway", cache_dir=None)


def test_every_contract_is_kept(graph: Any) -> None:
    broken = []
    for contract in _contracts().values():
        check = contract.check(copy.deepcopy(graph), verbose=False)
        if not check.kept:
            contract.render_broken_contract(check)  # printed: shown with the failure
            broken.append(contract.name)
    assert broken == []


def test_the_contracts_are_the_documented_layers() -> None:
    assert sorted(_contracts()) == sorted(BREAKERS)


@pytest.mark.parametrize(
    ("contract_id", "importer", "imported"),
    [(key, *pair) for key, pairs in BREAKERS.items() for pair in pairs],
)
def test_a_forbidden_import_breaks_the_contract(
    graph: Any, contract_id: str, importer: str, imported: str
) -> None:
    changed = copy.deepcopy(graph)
    changed.add_import(importer=importer, imported=imported, line_number=1, line_contents="")
    assert not _contracts()[contract_id].check(changed, verbose=False).kept
