"""Access control for the API and the console: bearer tokens, a session cookie, CSRF, Host checks.

* ``IMAGEMATCH_API_TOKEN`` holds one or more named tokens (``token``, ``name:token,name2:token2``
  or a JSON object ``{"name": "token"}``): several are valid at once, so a token can be rotated
  without downtime. When set, every ``/v1/*`` route, ``/docs`` and every ``/ui`` page needs
  ``Authorization: Bearer <token>`` or the session cookie the login form sets. ``/healthz`` and
  the webhooks (which carry their own signatures) stay open.
* The session cookie holds ``<name>.<HMAC of a fixed label under the token>``: never the token
  itself, and it stops working the moment its token is removed. HttpOnly, SameSite=Strict, Secure
  when served over https. Every comparison is constant-time.
* Cross-site requests: a state-changing request not authenticated by a bearer token must not come
  from another site (``Origin`` / ``Sec-Fetch-Site``) and, when it is authenticated by the cookie,
  must carry the CSRF token (double-submit cookie) as ``X-CSRF-Token`` or a ``csrf_token`` field
  (the console's form handlers check the field: :func:`check_csrf_field`).
* Served on loopback without a token, requests whose ``Host`` is not a loopback name are refused:
  a web page cannot reach the service by rebinding its own DNS name to 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import secrets
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

from fastapi import FastAPI, HTTPException, Request
from starlette.datastructures import MutableHeaders
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from imagematch.config import Settings

__all__ = [
    "CSRF_COOKIE",
    "SESSION_COOKIE",
    "AccessControl",
    "ApiToken",
    "check_csrf_field",
    "is_loopback_host",
    "parse_tokens",
    "principal_of",
]

SESSION_COOKIE = "imagematch_session"
CSRF_COOKIE = "imagematch_csrf"
CSRF_HEADER = "x-csrf-token"
_SESSION_LABEL = b"imagematch-console-session-v1"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_OPEN_PATHS = ("/ui/login", "/ui/static/")  # reachable without a token (still Host- and CSRF-checked)
SESSION_MAX_AGE = 12 * 3600
# The console loads nothing from elsewhere and is never framed (its buttons cannot be clickjacked).
CONSOLE_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
_CONSOLE_HEADERS = (
    ("content-security-policy", CONSOLE_CSP),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "same-origin"),
)


@dataclass(frozen=True)
class ApiToken:
    """One accepted token; ``secret`` is left out of ``repr`` so it never reaches a log."""

    name: str
    secret: str = field(repr=False)

    def session_value(self) -> str:
        digest = hmac.new(self.secret.encode(), _SESSION_LABEL, hashlib.sha256).hexdigest()
        return f"{self.name}.{digest}"


def parse_tokens(value: str) -> list[ApiToken]:
    """``token``, ``name:token,name2:token2`` or ``{"name": "token"}`` → tokens. Raises ValueError
    (without echoing any token) for an empty token, a duplicate name or a malformed entry."""
    value = value.strip()
    if value.startswith("{"):
        try:
            pairs = [(str(k), str(v)) for k, v in json.loads(value).items()]
        except (json.JSONDecodeError, AttributeError) as exc:
            raise ValueError(
                "IMAGEMATCH_API_TOKEN looks like JSON but is not an object of name: token"
            ) from exc
    elif ":" not in value and "," not in value:
        pairs = [("default", value)]
    else:
        pairs = []
        for n, entry in enumerate(value.split(",")):
            name, sep, secret = entry.strip().partition(":")
            if not sep:
                raise ValueError(f"IMAGEMATCH_API_TOKEN entry {n + 1} must look like name:token")
            pairs.append((name.strip(), secret.strip()))
    tokens = []
    for name, secret in pairs:
        if not name or not name.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"token name {name!r} must be letters, digits, - or _")
        if len(secret) < 16:
            raise ValueError(f"token {name!r} is too short: use at least 16 characters")
        tokens.append(ApiToken(name, secret))
    if len({t.name for t in tokens}) != len(tokens):
        raise ValueError("IMAGEMATCH_API_TOKEN names each token once")
    return tokens


def is_loopback_host(host: str) -> bool:
    """``localhost``, ``*.localhost``, 127.0.0.0/8 or ::1, with or without a port."""
    host = host.strip().lower()
    if host.startswith("["):
        host = host[1 : host.find("]")] if "]" in host else host
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_open(path: str) -> bool:
    return any(path == p or (p.endswith("/") and path.startswith(p)) for p in _OPEN_PATHS)


def _same_site(request: Request) -> bool:
    """False when the browser says the request comes from another site."""
    if request.headers.get("sec-fetch-site") == "cross-site":
        return False
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    return urlsplit(origin).netloc.lower() == request.headers.get("host", "").lower()


def check_csrf_field(request: Request, value: object) -> None:
    """403 unless ``value`` (a form's ``csrf_token``) equals the request's CSRF cookie."""
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not (isinstance(value, str) and cookie and hmac.compare_digest(value.encode(), cookie.encode())):
        raise HTTPException(403, "the form is out of date or was sent from another site; reload the page")


class AccessControl:
    """Who may call what (see the module docstring); installed with :meth:`install`."""

    def __init__(self, tokens: list[ApiToken], *, loopback_hosts_only: bool = False) -> None:
        self.tokens = tokens
        self.loopback_hosts_only = loopback_hosts_only

    @classmethod
    def from_settings(cls, settings: Settings, *, loopback_hosts_only: bool = False) -> AccessControl:
        raw = settings.api_token.get_secret_value() if settings.api_token else ""
        return cls(parse_tokens(raw) if raw.strip() else [], loopback_hosts_only=loopback_hosts_only)

    @property
    def enabled(self) -> bool:
        return bool(self.tokens)

    def token_for(self, presented: str) -> ApiToken | None:
        """The token equal to ``presented``; every token is compared, in constant time."""
        found = None
        for token in self.tokens:
            if hmac.compare_digest(presented.encode(), token.secret.encode()):
                found = token
        return found

    def _session(self, request: Request) -> ApiToken | None:
        cookie = request.cookies.get(SESSION_COOKIE, "")
        found = None
        for token in self.tokens:
            if hmac.compare_digest(cookie.encode(), token.session_value().encode()):
                found = token
        return found

    def _bearer(self, request: Request) -> ApiToken | None:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        return self.token_for(value.strip()) if scheme.lower() == "bearer" and value else None

    def set_session(self, response: Response, request: Request, token: ApiToken) -> None:
        response.set_cookie(
            SESSION_COOKIE,
            token.session_value(),
            max_age=SESSION_MAX_AGE,
            httponly=True,
            samesite="strict",
            secure=_is_https(request),
            path="/",
        )

    async def check(self, request: Request) -> Response | None:
        """A refusal for ``request``, or None to let it through. Requests that
        :func:`_passes_through` never come here."""
        path = request.url.path
        if self.loopback_hosts_only and not is_loopback_host(request.headers.get("host", "")):
            return JSONResponse(
                {"detail": "only a loopback Host is served (set IMAGEMATCH_API_TOKEN to serve others)"},
                status_code=403,
            )
        bearer = self._bearer(request) if self.enabled else None
        cookie = self._session(request) if self.enabled and bearer is None else None
        who = bearer or cookie
        request.state.principal = who.name if who else None  # read with principal_of
        if self.enabled and bearer is None and cookie is None and not _is_open(path):
            if path == "/" or path.startswith("/ui"):
                target = path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/ui/login?next={quote(target)}", status_code=303)
            return JSONResponse(
                {"detail": "missing or invalid token: send Authorization: Bearer <IMAGEMATCH_API_TOKEN>"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        if request.method not in _SAFE_METHODS and bearer is None:
            if not _same_site(request):
                return JSONResponse({"detail": "cross-site request refused"}, status_code=403)
            if cookie is not None and not path.startswith("/ui/"):
                # /v1 from the console's own scripts: they send the CSRF token as a header.
                try:
                    check_csrf_field(request, request.headers.get(CSRF_HEADER))
                except HTTPException as exc:
                    return JSONResponse({"detail": exc.detail}, status_code=403)
        return None

    def install(self, app: FastAPI) -> None:
        """Check every request; give each browser a CSRF cookie (``request.state.csrf_token``)."""
        app.add_middleware(_AccessMiddleware, access=self)


class _AccessMiddleware:
    """:class:`AccessControl` as plain ASGI: reads only the request's headers and adds headers to
    the response's start message. (Starlette's ``BaseHTTPMiddleware`` streams every body through
    an extra task and queue: a third of the server's CPU per webhook.) The webhooks and
    ``/healthz`` pass straight through: they carry their own signatures and need no cookie."""

    def __init__(self, app: ASGIApp, access: AccessControl) -> None:
        self.app = app
        self.access = access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or _passes_through(path):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        refusal = await self.access.check(request)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        csrf = request.cookies.get(CSRF_COOKIE)
        request.state.csrf_token = csrf or secrets.token_urlsafe(24)
        request.state.access = self.access
        extra = list(_CONSOLE_HEADERS) if path.startswith("/ui") else []
        if csrf is None:
            extra += _csrf_cookie_headers(request.state.csrf_token, secure=_is_https(request))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start" and extra:
                headers = MutableHeaders(scope=message)
                for name, value in extra:
                    if name == "set-cookie":
                        headers.append(name, value)
                    else:
                        headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def principal_of(request: Request) -> str | None:
    """The name of the token (or the console session's token) that authenticated ``request``;
    ``None`` when the service runs without tokens."""
    name = getattr(request.state, "principal", None)
    return name if isinstance(name, str) else None


def _passes_through(path: str) -> bool:
    """The webhooks (signed by their senders) and ``/healthz``: no token, Host check or cookie."""
    return path == "/healthz" or path.startswith("/webhooks/")


def _csrf_cookie_headers(value: str, *, secure: bool) -> list[tuple[str, str]]:
    """The ``Set-Cookie`` header Starlette would write for the CSRF cookie."""
    carrier = Response()
    carrier.set_cookie(CSRF_COOKIE, value, httponly=True, samesite="strict", secure=secure, path="/")
    return [("set-cookie", v.decode("latin-1")) for k, v in carrier.raw_headers if k == b"set-cookie"]


def _is_https(request: Request) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip()
    return request.url.scheme == "https" or forwarded == "https"
