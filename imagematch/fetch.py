"""Safe image download: http(s) only, public addresses only, size cap, redirects checked hop by hop.

Credentials (e.g. a Zendesk API token) are sent only to the host they belong to, never to a
redirect target such as a CDN. Failures are classified for the retry policy: timeouts, network
errors, 429 and 5xx are transient; 4xx, oversize and forbidden addresses are permanent.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin, urlsplit

import httpx

from imagematch.errors import PermanentError, TransientError

__all__ = ["ImageFetcher", "raise_for_http_status", "retry_after_seconds"]

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


def _is_public_host(host: str) -> bool:
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror as exc:
        raise TransientError(f"cannot resolve {host}: {exc}") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global or address.is_multicast:
            return False
    return True


class ImageFetcher:
    def __init__(self, client: httpx.Client, *, max_bytes: int, allow_private: bool = False) -> None:
        self._client = client
        self._max_bytes = max_bytes
        self._allow_private = allow_private

    def fetch(
        self,
        url: str,
        *,
        credentials: Mapping[str, str] | None = None,
        credential_host: str | None = None,
    ) -> bytes:
        """Download ``url`` and return its bytes.

        ``credentials`` (headers) go only to requests whose host equals ``credential_host``
        (default: the first URL's host). Raises PermanentError/TransientError as classified above.
        """
        credential_host = credential_host or urlsplit(url).hostname
        for _ in range(MAX_REDIRECTS + 1):
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise PermanentError(f"only http(s) image URLs are accepted, got {url[:200]!r}")
            if not self._allow_private and not _is_public_host(parts.hostname):
                raise PermanentError(f"refusing to fetch from a private address: {parts.hostname}")
            headers = dict(credentials or {}) if parts.hostname == credential_host else {}
            try:
                with self._client.stream("GET", url, headers=headers, follow_redirects=False) as response:
                    if response.is_redirect and "location" in response.headers:
                        url = urljoin(url, response.headers["location"])
                        continue
                    raise_for_http_status(response, f"download {parts.hostname}{parts.path[:80]}")
                    return self._read_capped(response)
            except httpx.TimeoutException as exc:
                raise TransientError(f"timed out downloading {parts.hostname}") from exc
            except httpx.TransportError as exc:
                raise TransientError(f"network error downloading {parts.hostname}: {exc}") from exc
        raise PermanentError(f"more than {MAX_REDIRECTS} redirects")

    def _read_capped(self, response: httpx.Response) -> bytes:
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self._max_bytes:
            raise PermanentError(f"image is {int(declared):,} bytes; the limit is {self._max_bytes:,}")
        content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type.startswith("text/") or content_type == "application/json":
            raise PermanentError(f"not an image: the server sent {content_type}")
        chunks, size = [], 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > self._max_bytes:
                raise PermanentError(f"image is larger than the limit of {self._max_bytes:,} bytes")
            chunks.append(chunk)
        return b"".join(chunks)
