"""HTTPS and mutual TLS with the real `gateway serve` process, and no token in any log line."""

from __future__ import annotations

import json
import signal
import ssl
from pathlib import Path

import aiohttp
import pytest

from tests.integration.certs import Authority
from tests.integration.conftest import write_deployment
from tests.integration.events import order, structured
from tests.integration.process import Process, free_port, run_cli

TOKEN = "tok-Zx81-secret-value"
OTHER_TOKEN = "tok-Qw27-rotated-value"
WRONG_TOKEN = "tok-wrong-presented-value"


def client_context(ca: Path, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca))
    if cert is not None:
        context.load_cert_chain(cert, key)
    return context


def deploy(tmp_path: Path, port: int, tls: dict[str, str], **extra: object) -> Path:
    return write_deployment(
        tmp_path,
        [{"name": "all", "sink": "http://127.0.0.1:9/never"}],
        gateway={
            "server": {"port": port, "shutdown_grace": "1s", "tls": tls},
            "producers": [
                {"name": "shop", "token": [TOKEN, OTHER_TOKEN], "sources": ["/shop"]},
                {"name": "billing", "client_cn": "billing-service"},
            ],
            **extra,
        },
    )


async def post(gateway: Process, context: ssl.SSLContext, token: str | None = None) -> int:
    message = structured(order())
    if token:
        message["headers"]["Authorization"] = f"Bearer {token}"
    async with aiohttp.ClientSession() as http, http.post(
        f"{gateway.url}/events", ssl=context, **message
    ) as resp:
        return resp.status


async def test_https_with_a_verified_certificate_and_no_token_in_the_logs(
    tmp_path: Path, processes: list[Process]
) -> None:
    ca = Authority(tmp_path)
    server = ca.issue("127.0.0.1", server=True)
    port = free_port()
    config = deploy(tmp_path, port, {"cert": str(server.cert), "key": str(server.key)})
    trust = client_context(ca.pair.cert)
    gateway = Process(config, port, tmp_path / "gateway.log", tls=trust)
    processes.append(gateway)
    await gateway.start()

    assert await post(gateway, trust, TOKEN) == 202
    assert await post(gateway, trust, OTHER_TOKEN) == 202
    assert await post(gateway, trust, WRONG_TOKEN) == 401
    assert await post(gateway, trust) == 401
    # A client that does not trust our CA refuses the server: the certificate is really checked.
    with pytest.raises(aiohttp.ClientConnectorCertificateError):
        await post(gateway, ssl.create_default_context(), TOKEN)
    # Plain HTTP on the TLS port gets nowhere.
    with pytest.raises(aiohttp.ClientError):
        async with aiohttp.ClientSession() as http:
            await http.post(f"http://127.0.0.1:{port}/events", data=b"{}")

    gateway.kill(signal.SIGTERM)
    assert gateway.wait() == 0
    log = gateway.log.read_text()
    assert "listening on https://" in log
    for secret in (TOKEN, OTHER_TOKEN, WRONG_TOKEN):
        assert secret not in log


async def test_mutual_tls_names_the_producer_and_refuses_unknown_clients(
    tmp_path: Path, processes: list[Process]
) -> None:
    ca = Authority(tmp_path)
    server = ca.issue("127.0.0.1", server=True)
    billing = ca.issue("billing-service", server=False)
    stranger = ca.issue("stranger", server=False)
    (tmp_path / "rogue").mkdir()
    rogue = Authority(tmp_path / "rogue", "Rogue CA").issue("billing-service", server=False)
    port = free_port()
    tls = {"cert": str(server.cert), "key": str(server.key), "client_ca": str(ca.pair.cert)}
    config = deploy(tmp_path, port, tls, producer_attribute="producer")
    as_billing = client_context(ca.pair.cert, billing.cert, billing.key)
    gateway = Process(config, port, tmp_path / "gateway.log", tls=as_billing)
    processes.append(gateway)
    await gateway.start()

    # The certificate's common name names the producer: no token needed.
    assert await post(gateway, as_billing) == 202
    # A certificate from our CA that names no producer still needs a token.
    as_stranger = client_context(ca.pair.cert, stranger.cert, stranger.key)
    assert await post(gateway, as_stranger) == 401
    assert await post(gateway, as_stranger, TOKEN) == 202
    # No client certificate, or one from another CA: the handshake itself is refused.
    for context in (
        client_context(ca.pair.cert),
        client_context(ca.pair.cert, rogue.cert, rogue.key),
    ):
        with pytest.raises(aiohttp.ClientError):
            await post(gateway, context, TOKEN)


def test_check_never_prints_a_secret(tmp_path: Path) -> None:
    path = write_deployment(
        tmp_path,
        [{"name": "x", "sink": "http://127.0.0.1:1/x", "signing": {"secret": "whsec_not!base64"}}],
        gateway={"producers": [{"name": "a", "token": TOKEN}, {"name": "b", "token": TOKEN}]},
    )
    result = run_cli("check", "-c", str(path))
    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert "producers[1].token" in output
    assert "signing.secret" in output
    assert TOKEN not in output
    assert "not!base64" not in output


def test_check_loads_the_tls_files(tmp_path: Path) -> None:
    ca = Authority(tmp_path)
    server = ca.issue("127.0.0.1", server=True)
    other = ca.issue("other", server=True)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    tls = {"cert": str(server.cert), "key": str(other.key), "client_ca": str(garbage)}
    path = deploy(tmp_path, 8080, tls)
    result = run_cli("check", "--json", "-c", str(path))
    assert result.returncode == 1
    problems = {p["path"]: p["message"] for p in json.loads(result.stdout)["problems"]}
    assert "matching private key" in problems["server.tls.cert"]
    assert "CA certificates" in problems["server.tls.client_ca"]
