"""Safe download: http(s) only, public addresses only, size cap, total deadline, redirects checked
hop by hop, each hop connected to exactly the address that was checked (no DNS rebinding).

Credentials (e.g. a Zendesk API token) are sent only to the origin (scheme, host, port) they
belong to, never to a redirect target such as a CDN or another port. Failures are classified for
the retry policy: timeouts, network errors, 429 and 5xx are transient; 4xx, oversize and
forbidden addresses are permanent.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import httpx

from imagematch.addresses import AddressPolicy, Resolver, resolve_host
from imagematch.errors import PermanentError, TransientError

__all__ = [
    "ImageFetcher",
    "local_path",
    "origin_of",
    "raise_for_http_status",
    "read_uri",
    "retry_after_seconds",
]

MAX_REDIRECTS = 5


def retry_after_seconds(value: str | None) -> float | None:
    """Parse a ``Retry-After`` header (seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


def raise_for_http_status(response: httpx.Response, what: str) -> None:
    """Turn an error status into TransientError (429, 5xx, 408) or PermanentError (other 4xx)."""
    code = response.status_code
    if code < 400:
        return
    message = f"{what}: HTTP {code}"
    if code in (408, 429) or code >= 500:
        raise TransientError(message, retry_after=retry_after_seconds(response.headers.get("Retry-After")))
    raise PermanentError(message)


_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS = {"http": 80, "https": 443}

Origin = tuple[str, str, int]  # scheme, host, port: where credentials may go


def origin_of(url: str) -> Origin:
    """``(scheme, host, port)`` of ``url``, with the scheme's default port filled in."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme, 0)


@dataclass(frozen=True)
class _Hop:
    """One request: the checked address to connect to and the names the server expects."""

    url: str  # what the caller asked for
    pinned: httpx.URL  # the same URL with the host replaced by the checked address
    host_header: str
    server_name: str


class ImageFetcher:
    """Downloads untrusted URLs within a size cap and a total deadline (see the module docstring).

    ``policy`` says which private destinations and public ports are allowed; ``resolve`` maps a
    host to its addresses (the system resolver by default; tests inject one).
    """

    def __init__(
        self,
        client: httpx.Client,
        *,
        max_bytes: int,
        policy: AddressPolicy | None = None,
        total_seconds: float = 30.0,
        resolve: Resolver = resolve_host,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self.max_bytes = max_bytes
        self._policy = policy or AddressPolicy()
        self._total_seconds = total_seconds
        self._resolve = resolve
        self._clock = clock

    def fetch(
        self,
        url: str,
        *,
        credentials: Mapping[str, str] | None = None,
        credential_origin: str | None = None,
        max_bytes: int | None = None,
        accept: Callable[[str], bool] | None = None,
    ) -> bytes:
        """Download ``url`` and return its bytes.

        ``credentials`` (headers) go only to requests with the same scheme, host and port as
        ``credential_origin`` (default: the first URL). ``max_bytes`` overrides the image cap and
        ``accept`` judges the content type (default: anything but text and JSON). Raises
        PermanentError (4xx, too large, refused address or port, bad redirect) or TransientError
        (network, timeout, 429/5xx, or the whole download taking longer than the deadline).
        """
        trusted = origin_of(credential_origin or url)
        deadline = self._clock() + self._total_seconds
        for _ in range(MAX_REDIRECTS + 1):
            hop = self._hop(url)
            headers = {"Host": hop.host_header}
            if urlsplit(url).scheme == "https":
                # The pool keys connections by address, not by server name: never reuse a TLS
                # connection verified for one name to send another name's request.
                headers["Connection"] = "close"
            if credentials and origin_of(url) == trusted:
                headers.update(credentials)
            try:
                with self._client.stream(
                    "GET",
                    hop.pinned,
                    headers=headers,
                    follow_redirects=False,
                    timeout=self._timeout(deadline),
                    extensions={"sni_hostname": hop.server_name},
                ) as response:
                    if 300 <= response.status_code < 400:
                        url = self._redirect_target(url, response)
                        continue
                    raise_for_http_status(response, f"download {hop.server_name}{urlsplit(url).path[:80]}")
                    return self._read_capped(response, deadline, max_bytes or self.max_bytes, accept)
            except httpx.TimeoutException as exc:
                raise TransientError(f"timed out downloading {hop.server_name}") from exc
            except httpx.TransportError as exc:
                raise TransientError(f"network error downloading {hop.server_name}: {exc}") from exc
        raise PermanentError(f"more than {MAX_REDIRECTS} redirects")

    def _hop(self, url: str) -> _Hop:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PermanentError(f"only http(s) URLs are accepted, got {url[:200]!r}")
        try:
            port = parts.port or _DEFAULT_PORTS[parts.scheme]
        except ValueError as exc:
            raise PermanentError(f"bad port in {url[:200]!r}") from exc
        host = parts.hostname
        address = self._policy.choose(host, port, self._resolve(host, port))
        pinned = httpx.URL(url).copy_with(host=str(address))
        host_header = parts.netloc.rpartition("@")[2]  # never forward userinfo
        return _Hop(url=url, pinned=pinned, host_header=host_header, server_name=host)

    def _timeout(self, deadline: float) -> httpx.Timeout:
        remaining = deadline - self._clock()
        if remaining <= 0:
            raise TransientError(f"download took longer than {self._total_seconds:g} s")
        configured = self._client.timeout
        return httpx.Timeout(
            connect=min(configured.connect or remaining, remaining),
            read=min(configured.read or remaining, remaining),
            write=min(configured.write or remaining, remaining),
            pool=min(configured.pool or remaining, remaining),
        )

    @staticmethod
    def _redirect_target(url: str, response: httpx.Response) -> str:
        location = response.headers.get("location")
        if response.status_code not in _REDIRECTS or not location:
            raise PermanentError(f"HTTP {response.status_code} without a redirect target is not an image")
        return urljoin(url, str(location))

    def _read_capped(
        self,
        response: httpx.Response,
        deadline: float,
        max_bytes: int,
        accept: Callable[[str], bool] | None,
    ) -> bytes:
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            raise PermanentError(f"the file is {int(declared):,} bytes; the limit is {max_bytes:,}")
        content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if accept is None and not _looks_like_image(content_type):
            raise PermanentError(f"not an image: the server sent {content_type}")
        if accept is not None and not accept(content_type):
            raise PermanentError(f"unexpected content type: the server sent {content_type!r}")
        chunks, size = [], 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > max_bytes:
                raise PermanentError(f"the file is larger than the limit of {max_bytes:,} bytes")
            if self._clock() > deadline:
                raise TransientError(f"download took longer than {self._total_seconds:g} s")
            chunks.append(chunk)
        return b"".join(chunks)


def _looks_like_image(content_type: str) -> bool:
    return not (content_type.startswith("text/") or content_type == "application/json")


def local_path(uri: str) -> Path | None:
    """The local file a path or ``file://`` URI names; ``None`` for any other scheme."""
    parts = urlsplit(uri)
    if parts.scheme == "file":
        return Path(unquote(parts.path))
    if parts.scheme == "":
        return Path(uri)
    return None


def read_uri(uri: str, fetcher: ImageFetcher, *, max_bytes: int | None = None) -> bytes:
    """Bytes of a local regular file (path or file:// URI) or of an http(s) URL through the safe
    fetcher, at most ``max_bytes`` (default: the fetcher's image cap). Devices, FIFOs and
    directories are refused. Raises PermanentError (missing, unreadable, too large, refused)."""
    path = local_path(uri)
    if path is None:
        return fetcher.fetch(uri, max_bytes=max_bytes)
    limit = max_bytes or fetcher.max_bytes
    try:
        with path.open("rb") as file:
            if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
                raise PermanentError(f"not a regular file: {path}")
            data = file.read(limit + 1)
    except FileNotFoundError as exc:
        raise PermanentError(f"file not found: {path}") from exc
    except OSError as exc:
        raise PermanentError(f"cannot read {path}: {exc}") from exc
    if len(data) > limit:
        raise PermanentError(f"{path} is larger than the limit of {limit:,} bytes")
    return data
