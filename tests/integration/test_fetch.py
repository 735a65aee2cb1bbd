"""Downloads against real servers on 127.0.0.1, with the SSRF block on unless a test says not."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from imagematch.addresses import AddressPolicy
from imagematch.errors import PermanentError, TransientError
from imagematch.fetch import ImageFetcher
from tests.loopback import LoopbackServer, Route, loopback_server

PUBLIC = "93.184.216.34"
PNG = b"\x89PNG\r\n\x1a\n" + b"0" * 64
ANYWHERE = AddressPolicy.parse("true")


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with loopback_server({"/img.png": Route(body=PNG)}) as running:
        yield running


def fetcher(policy: AddressPolicy | None = None, **kwargs: Any) -> ImageFetcher:
    return ImageFetcher(httpx.Client(timeout=5), max_bytes=1_000_000, policy=policy, **kwargs)


def test_dns_rebinding_cannot_reach_loopback(server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The name resolves to a public address when checked and to 127.0.0.1 afterwards: the
    download goes to the checked address (here a stand-in for the public server), never to the
    loopback server, and still names the host it asked for."""
    real_getaddrinfo = socket.getaddrinfo
    answers = iter([PUBLIC])

    def rebinding(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "rebind.example":
            address = next(answers, "127.0.0.1")
            return real_getaddrinfo(address, port, *args, **kwargs)
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    seen: list[httpx.Request] = []

    class PublicInternet(httpx.HTTPTransport):
        """Answers for the public address itself; anything else goes out over real sockets."""

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            if request.url.host == PUBLIC:
                seen.append(request)
                return httpx.Response(200, headers={"Content-Type": "image/png"}, content=b"public")
            return super().handle_request(request)

    client = httpx.Client(transport=PublicInternet(), timeout=5)
    guarded = ImageFetcher(client, max_bytes=1_000, policy=AddressPolicy.parse("", [server.port]))
    assert guarded.fetch(f"http://rebind.example:{server.port}/img.png") == b"public"
    assert server.requests == []
    assert seen[0].headers["host"] == f"rebind.example:{server.port}"


def test_every_redirect_hop_is_checked_and_pinned(server: LoopbackServer) -> None:
    server.routes["/hop"] = Route(status=302, headers={"Location": server.url("/img.png", "127.0.0.1")})
    only_localhost = fetcher(AddressPolicy.parse("localhost"))
    with pytest.raises(PermanentError, match=r"private address: 127\.0\.0\.1"):
        only_localhost.fetch(server.url("/hop", "localhost"))
    assert [path for path, _ in server.requests] == ["/hop"]


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "localhost", "2130706433", "0x7f000001", "127.1", "[::1]", "[::ffff:127.0.0.1]"]
)
def test_the_block_refuses_loopback_in_every_spelling(server: LoopbackServer, host: str) -> None:
    with pytest.raises(PermanentError, match=r"private address|cannot resolve"):
        fetcher().fetch(f"http://{host}:{server.port}/img.png")
    assert server.requests == []


def test_credentials_stay_on_their_origin_port_included() -> None:
    with loopback_server() as files, loopback_server() as account:
        files.routes["/file"] = Route(body=PNG)
        account.routes["/attachment"] = Route(status=302, headers={"Location": files.url("/file")})
        data = fetcher(ANYWHERE).fetch(
            account.url("/attachment"),
            credentials={"Authorization": "Bearer s3cret"},
            credential_origin=account.url("/"),
        )
    assert data == PNG
    assert account.requests[0][1]["authorization"] == "Bearer s3cret"
    assert "authorization" not in files.requests[0][1]  # same host name, another port


def test_a_redirect_without_location_is_an_error_not_image_bytes(server: LoopbackServer) -> None:
    server.routes["/nowhere"] = Route(status=302, body=b"\x89PNG pretend")
    server.routes["/not-modified"] = Route(status=304)
    with pytest.raises(PermanentError, match="without a redirect target"):
        fetcher(ANYWHERE).fetch(server.url("/nowhere"))
    with pytest.raises(PermanentError, match="304"):
        fetcher(ANYWHERE).fetch(server.url("/not-modified"))


def test_a_trickling_server_hits_the_total_deadline_as_a_transient_error(server: LoopbackServer) -> None:
    server.routes["/slow.png"] = Route(body=PNG, trickle_seconds=0.1)  # ~7 s in all
    with pytest.raises(TransientError, match=r"longer than 0\.5 s"):
        fetcher(ANYWHERE, total_seconds=0.5).fetch(server.url("/slow.png"))


def test_an_allowed_private_host_downloads_normally(server: LoopbackServer) -> None:
    assert fetcher(AddressPolicy.parse("127.0.0.0/8")).fetch(server.url("/img.png")) == PNG


def test_https_hops_keep_the_server_name_for_sni_and_host() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, headers={"Content-Type": "image/png"}, content=PNG)

    client = httpx.Client(transport=httpx.MockTransport(answer))
    pinned = ImageFetcher(client, max_bytes=1_000, resolve=lambda host, port: [PUBLIC])
    assert pinned.fetch("https://images.example/a.png") == PNG
    [request] = seen
    assert request.url.host == PUBLIC and request.url.scheme == "https"
    assert request.headers["host"] == "images.example"
    assert request.extensions["sni_hostname"] == "images.example"
    assert request.headers["connection"] == "close"
