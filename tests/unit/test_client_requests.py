"""The delivery client's requests and what comes around them: the request on the wire (the
request line, Host, Content-Length, headers that cannot be written, credentials in the URL),
the response's headers, HTTPS and whom the certificate is checked for, the egress guard on
resolved addresses, and the pool at close() and when idle connections expire or end. The
servers, the client factory and the helpers are in `clientkit`."""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import re
import ssl
from pathlib import Path

import pytest
from yarl import URL

from gateway.delivery import client as client_module
from gateway.delivery.egress import EgressRefused, GuardedResolver
from gateway.egress import EgressPolicy
from tests.unit.clientkit import (
    OK,
    MakeClient,
    Names,
    Peer,
    RawServer,
    Sink,
    StartRaw,
    closed_port,
    ended,
    gathered,
    lines,
    make_client,
    per_connection,
    raw_server,
    serving,
    tls_sink,
    until,
    values,
)

__all__ = ["make_client", "raw_server", "tls_sink"]  # fixtures


# -- the request on the wire -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "target"),
    [
        ("/hooks/a%2Fb/%C3%A9?x=1&y=%20z&e=%3D", "/hooks/a%2Fb/%C3%A9?x=1&y=%20z&e=%3D"),
        ("/hook#fragment", "/hook"),
        ("", "/"),
        ("?only=query", "/?only=query"),
    ],
)
async def test_the_request_line_carries_the_raw_path_and_query(
    raw_server: StartRaw, make_client: MakeClient, path: str, target: str
) -> None:
    server = await raw_server(serving())
    url = URL(f"http://127.0.0.1:{server.port}{path}")
    await make_client().request("PUT", url, [], b"{}", 2.0)
    [request] = server.peers[0].requests
    assert lines(request)[0] == f"PUT {target} HTTP/1.1"


async def test_host_comes_first_with_the_port(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    server = await raw_server(serving())
    headers = [("User-Agent", "probe/1"), ("X-Team", "billing"), ("X-Team", "ops")]
    await make_client().request("POST", server.url("/hook"), headers, b"{}", 2.0)
    [request] = server.peers[0].requests
    assert lines(request) == [
        "POST /hook HTTP/1.1",
        f"Host: 127.0.0.1:{server.port}",
        "User-Agent: probe/1",
        "X-Team: billing",
        "X-Team: ops",
        "Content-Length: 2",
    ]


@pytest.mark.parametrize(
    ("url", "host", "asked"),
    [
        ("http://sink.example/hook", "sink.example", 80),
        ("http://sink.example:80/hook", "sink.example", 80),
        ("http://sink.example:8080/hook", "sink.example:8080", 8080),
    ],
)
async def test_host_has_the_port_only_when_it_is_not_the_default(
    raw_server: StartRaw, make_client: MakeClient, url: str, host: str, asked: int
) -> None:
    server = await raw_server(serving())
    names = Names({"sink.example": [("127.0.0.1", server.port)]})
    await make_client(resolver=names).request("POST", URL(url), [], b"{}", 2.0)
    assert names.asked == [("sink.example", asked)]
    [request] = server.peers[0].requests
    assert lines(request)[1] == f"Host: {host}"


async def test_an_ipv6_literal_is_bracketed_in_host(make_client: MakeClient) -> None:
    server = RawServer(serving())
    try:
        await server.start("::1")
    except OSError as exc:
        pytest.skip(f"the IPv6 loopback address ::1 cannot be bound on this machine: {exc}")
    try:
        url = URL(f"http://[::1]:{server.port}/hook")
        assert (await make_client().request("POST", url, [], b"{}", 2.0)).status == 200
        [request] = server.peers[0].requests
        assert lines(request)[1] == f"Host: [::1]:{server.port}"
    finally:
        await server.stop()


async def test_a_given_host_header_is_sent_instead_of_the_default(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    server = await raw_server(serving())
    await make_client().request("POST", server.url(), [("host", "front.example")], b"{}", 2.0)
    [request] = server.peers[0].requests
    assert values(request, "Host") == ["front.example"]


@pytest.mark.parametrize(
    ("body", "length"),
    [(b'{"total": 12}', ["13"]), (b"", ["0"]), (None, [])],
)
async def test_content_length_is_sent_for_every_body_and_only_for_a_body(
    raw_server: StartRaw, make_client: MakeClient, body: bytes | None, length: list[str]
) -> None:
    server = await raw_server(serving())
    client = make_client()
    for _ in range(2):  # the framing holds for a second request on the connection
        assert (await client.request("POST", server.url(), [], body, 2.0)).status == 200
    requests = server.peers[0].requests
    assert len(requests) == 2
    for request in requests:
        assert values(request, "Content-Length") == length
        assert values(request, "Transfer-Encoding") == []
        assert request.partition(b"\r\n\r\n")[2] == (body or b"")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("X-Note", "a\r\nX-Injected: 1"),
        ("X-Note", "a\nb"),
        ("X-Note", "a\rb"),
        ("X-Note", "a\x00b"),
        ("X Note", "v"),
        ("X-Note:", "v"),
        ("X-Note\r\nX-Injected", "v"),
        ("X-Nöte", "v"),
        ("", "v"),
    ],
)
async def test_an_unwritable_header_raises_before_anything_is_sent(
    raw_server: StartRaw, make_client: MakeClient, name: str, value: str
) -> None:
    server = await raw_server(serving())
    client = make_client()
    with pytest.raises(ValueError, match="cannot be written"):
        await client.request("POST", server.url(), [(name, value)], b"{}", 2.0)
    assert (await client.request("POST", server.url("/next"), [], b"{}", 2.0)).status == 200
    [peer] = server.peers  # the refused request opened no connection and sent nothing
    assert [lines(r)[0] for r in peer.requests] == ["POST /next HTTP/1.1"]


@pytest.mark.parametrize(
    ("userinfo", "pair"),
    [
        ("us%40er:p%3Ass%20w%C3%B6rd", "us@er:p:ss wörd"),
        ("token", "token:"),
        ("user:", "user:"),
    ],
)
async def test_url_credentials_become_basic_authorization(
    raw_server: StartRaw, make_client: MakeClient, userinfo: str, pair: str
) -> None:
    server = await raw_server(serving())
    url = URL(f"http://{userinfo}@127.0.0.1:{server.port}/hook")
    await make_client().request("POST", url, [("X-Team", "a")], b"{}", 2.0)
    [request] = server.peers[0].requests
    [authorization] = values(request, "Authorization")
    scheme, _, encoded = authorization.partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(encoded, validate=True).decode() == pair
    # The credentials go nowhere else: not in the request line, not in Host.
    assert lines(request)[:2] == ["POST /hook HTTP/1.1", f"Host: 127.0.0.1:{server.port}"]


@pytest.mark.parametrize("name", ["Authorization", "authorization"])
async def test_url_credentials_and_an_authorization_header_conflict(
    raw_server: StartRaw, make_client: MakeClient, name: str
) -> None:
    server = await raw_server(serving())
    client = make_client()
    url = URL(f"http://user:pw@127.0.0.1:{server.port}/hook")
    with pytest.raises(ValueError, match="Authorization"):
        await client.request("POST", url, [(name, "Bearer tok")], b"{}", 2.0)
    await client.request("POST", server.url("/next"), [], b"{}", 2.0)
    [peer] = server.peers
    assert [lines(r)[0] for r in peer.requests] == ["POST /next HTTP/1.1"]


async def test_response_header_names_are_lowercased_and_the_first_value_kept(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    server = await raw_server(
        serving(
            b"HTTP/1.1 429 Too Many Requests\r\n"
            b"X-Thing: one\r\nx-thing: two\r\nX-THING: three\r\n"
            b"Retry-After:  7 \t\r\n"  # RFC 9112 5: whitespace around a value is not the value
            b"WebHook-Allowed-Origin: gateway.example\r\n"
            b"Content-Length: 0\r\n\r\n"
        )
    )
    response = await make_client().request("POST", server.url(), [], b"{}", 2.0)
    assert response.status == 429
    assert response.headers == {
        "x-thing": "one",
        "retry-after": "7",
        "webhook-allowed-origin": "gateway.example",
        "content-length": "0",
    }


# -- HTTPS -----------------------------------------------------------------------------------
async def test_https_to_a_server_the_context_trusts(
    tls_sink: tuple[Sink, int, ssl.SSLContext], make_client: MakeClient
) -> None:
    recorder, port, trust = tls_sink
    names = Names({"localhost": [("127.0.0.1", port)]})
    client = make_client(ssl_context=trust, resolver=names)
    for _ in range(2):
        url = URL(f"https://127.0.0.1:{port}/ok")
        assert (await client.request("POST", url, [], b"{}", 2.0)).status == 200
    # By name, on the scheme's default port: the name is what the certificate is checked for.
    assert (await client.request("POST", URL("https://localhost/ok"), [], b"{}", 2.0)).status == 200
    assert names.asked == [("localhost", 443)]
    hosts = [headers["Host"] for _, headers, _, _ in recorder.seen]
    assert hosts == [f"127.0.0.1:{port}", f"127.0.0.1:{port}", "localhost"]
    assert len(set(recorder.ports()[:2])) == 1  # kept alive over TLS too


async def test_https_without_the_ca_fails_certificate_verification(
    tls_sink: tuple[Sink, int, ssl.SSLContext], make_client: MakeClient
) -> None:
    recorder, port, _ = tls_sink
    client = make_client()  # the system's trust store, which does not know the test CA
    with pytest.raises(ssl.SSLError, match="certificate verify failed"):
        await client.request("POST", URL(f"https://127.0.0.1:{port}/ok"), [], b"{}", 2.0)
    assert recorder.seen == []


async def test_the_system_trust_store_follows_ssl_cert_file(
    tls_sink: tuple[Sink, int, ssl.SSLContext],
    make_client: MakeClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without a context of its own the client takes the system's default verify paths, which
    an operator can point at a private CA with SSL_CERT_FILE (as the README says)."""
    recorder, port, _ = tls_sink
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "test-ca.crt"))
    monkeypatch.setattr(client_module, "_TLS", [])  # the default context is made once
    client = make_client()
    response = await client.request("POST", URL(f"https://127.0.0.1:{port}/ok"), [], b"{}", 2.0)
    assert response.status == 200
    assert len(recorder.seen) == 1


async def test_https_checks_the_certificate_for_the_name_not_the_address(
    tls_sink: tuple[Sink, int, ssl.SSLContext], make_client: MakeClient
) -> None:
    recorder, port, trust = tls_sink
    names = Names({"sink.example": [("127.0.0.1", port)]})  # the certificate is not for it
    client = make_client(ssl_context=trust, resolver=names)
    with pytest.raises(ssl.SSLCertVerificationError, match=r"sink\.example"):
        await client.request("POST", URL(f"https://sink.example:{port}/ok"), [], b"{}", 2.0)
    assert recorder.seen == []


# -- the egress guard ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "address"),
    [
        (EgressPolicy(), "169.254.169.254"),
        (EgressPolicy(deny=(ipaddress.ip_network("127.0.0.0/8"),)), "127.0.0.1"),
    ],
)
async def test_a_name_resolving_to_a_refused_address_is_never_connected_to(
    raw_server: StartRaw, make_client: MakeClient, policy: EgressPolicy, address: str
) -> None:
    server = await raw_server(serving())
    names = Names({"rebound.example": [(address, server.port)]})
    client = make_client(resolver=GuardedResolver(policy, names))
    url = URL(f"http://rebound.example:{server.port}/hook")
    with pytest.raises(EgressRefused, match=rf"rebound\.example resolves to {re.escape(address)}"):
        await client.request("POST", url, [], b"{}", 2.0)
    # Literal addresses are the caller's to check: they skip the resolver.
    assert (await client.request("POST", server.url("/next"), [], b"{}", 2.0)).status == 200
    assert names.asked == [("rebound.example", server.port)]
    [peer] = server.peers  # only the literal request connected
    assert [lines(r)[0] for r in peer.requests] == ["POST /next HTTP/1.1"]


async def test_a_name_resolving_to_an_allowed_loopback_address_connects(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    server = await raw_server(serving())
    # The refused address is dropped and the allowed one used.
    names = Names({"sink.example": [("169.254.169.254", server.port), ("127.0.0.1", server.port)]})
    client = make_client(resolver=GuardedResolver(EgressPolicy(), names))
    url = URL(f"http://sink.example:{server.port}/hook")
    assert (await client.request("POST", url, [], b"{}", 2.0)).status == 200
    [request] = server.peers[0].requests
    assert lines(request)[1] == f"Host: sink.example:{server.port}"


async def test_each_resolved_address_is_tried_in_turn(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    server = await raw_server(serving())
    refused = closed_port()
    names = Names(
        {
            "sink.example": [("127.0.0.1", refused), ("127.0.0.1", server.port)],
            "down.example": [("127.0.0.1", refused)],
        }
    )
    client = make_client(resolver=names)
    assert (await client.request("POST", URL("http://sink.example/"), [], b"", 2.0)).status == 200
    with pytest.raises(ConnectionRefusedError):
        await client.request("POST", URL("http://down.example/"), [], b"", 2.0)


# -- the pool and close() --------------------------------------------------------------------


async def test_close_ends_the_idle_connections_and_refuses_later_requests(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    server = await raw_server(gathered(2))
    client = make_client()
    answers = await asyncio.gather(
        *(client.request("POST", server.url(), [], b"{}", 2.0) for _ in range(2))
    )
    assert [r.status for r in answers] == [200, 200]
    assert not any(peer.ended.is_set() for peer in server.peers)
    await client.close()
    for peer in server.peers:
        await ended(peer)
    with pytest.raises(RuntimeError, match="closed"):
        await client.request("POST", server.url(), [], b"{}", 2.0)
    assert len(server.peers) == 2


async def test_a_request_in_flight_at_close_completes_and_its_connection_is_not_kept(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    async def held(peer: Peer, index: int) -> None:
        await peer.request()
        await peer.go.wait()
        await peer.send(OK)

    server = await raw_server(held)
    client = make_client()
    task = asyncio.create_task(client.request("POST", server.url(), [], b"{}", 2.0))
    await until(lambda: bool(server.peers) and bool(server.peers[0].requests))
    await client.close()
    server.peers[0].go.set()
    assert (await task).status == 200
    await ended(server.peers[0])


async def test_expired_idle_connections_are_all_closed_not_reused(
    raw_server: StartRaw, make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = await raw_server(gathered(3))
    client = make_client()
    await asyncio.gather(*(client.request("POST", server.url(), [], b"{}", 2.0) for _ in range(3)))
    monkeypatch.setattr(client_module, "KEEPALIVE", 0.0)  # every idle connection is too old
    assert (await client.request("POST", server.url(), [], b"{}", 2.0)).status == 200
    assert len(server.peers) == 4
    for peer in server.peers[:3]:
        await ended(peer)  # closed, not left open outside the pool


async def test_an_idle_connection_the_server_closed_does_not_cost_the_live_ones(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    async def answering_on_cue(peer: Peer, index: int) -> None:
        await peer.request()
        await peer.go.wait()
        await peer.send(OK)
        await serving()(peer, index)

    cue = answering_on_cue
    server = await raw_server(per_connection(cue, cue, cue, serving()))
    client = make_client()
    pending = {
        asyncio.create_task(client.request("POST", server.url(), [], b"{}", 2.0)) for _ in range(3)
    }
    await until(lambda: sum(len(peer.requests) for peer in server.peers) == 3)
    for peer in server.peers:  # answered one at a time: the pool holds them in this order
        peer.go.set()
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        assert [task.result().status for task in done] == [200]
    last = server.peers[2]
    last.hang_up()  # the most recently used connection, the first the pool hands out
    await ended(last)
    await asyncio.sleep(0.05)  # for the client to see the end
    assert (await client.request("POST", server.url(), [], b"{}", 2.0)).status == 200
    assert len(server.peers) == 3  # an older connection was reused, none opened
    assert [len(peer.requests) for peer in server.peers] == [1, 2, 1]
    await client.close()
    for peer in server.peers:
        await ended(peer)
