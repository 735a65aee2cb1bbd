"""Access control for the API and the console: bearer tokens, a session cookie, CSRF, Host checks.

* ``IMAGEMATCH_API_TOKEN`` holds one or more named tokens (``token``, ``name:token,name2:token2``
  or a JSON object ``{"name": "token"}``): several are valid at once, so a token can be rotated
  without downtime. When set, every ``/v1/*`` route, ``/docs`` and every ``/ui`` page needs
  ``Authorization: Bearer <token>`` or the session cookie the login form sets. ``/healthz`` and
  the webhooks (which carry their own signatures) stay open.
* The session cookie is a signed console session (:mod:`imagematch.sessions`): a random id and an
  issued-at time under the token's HMAC, never the token itself. It ends when its token is
  removed, ``IMAGEMATCH_SESSION_HOURS`` after login (on the server's clock), or at logout (revoked
  in the ledger). HttpOnly, SameSite=Strict, Secure when served over https. Every comparison is
  constant-time.
* Cross-site requests: a state-changing request not authenticated by a bearer token must not come
  from another site (``Origin`` / ``Sec-Fetch-Site``) and, when it is authenticated by the cookie,
  must carry the CSRF token (double-submit cookie) as ``X-CSRF-Token`` or a ``csrf_token`` field
  (the console's form handlers check the field: :func:`check_csrf_field`).
* Served on loopback without a token, requests whose ``Host`` is not a loopback name are refused:
  a web page cannot reach the service by rebinding its own DNS name to 127.0.0.1.
"""

from __future__ import annotations

import hmac
import json
import secrets
from dataclasses import dataclass, field
from urllib.parse import quote

from fastapi import FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from imagematch.config import Settings
from imagematch.guessing import GuessLimiter
from imagematch.ledger.base import Clock, utcnow
from imagematch.request_origin import is_loopback_host, is_same_site
from imagematch.sessions import ConsoleSession, SessionRevocations, issue_session, read_session

__all__ = [
    "CONSOLE_CSP",
    "CONSOLE_HEADERS",
    "CSRF_COOKIE",
    "SESSION_COOKIE",
    "AccessControl",
    "ApiToken",
    "check_csrf_field",
    "is_loopback_host",
    "is_same_site",
    "parse_tokens",
    "principal_of",
]

SESSION_COOKIE = "imagematch_session"
CSRF_COOKIE = "imagematch_csrf"
CSRF_HEADER = "x-csrf-token"
MIN_TOKEN_LENGTH = 24
MIN_DISTINCT_CHARACTERS = 8  # "aaaa…" or "abab…": visibly not random (openssl's have ~30)
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_OPEN_PATHS = ("/ui/login", "/ui/static/")  # reachable without a token (still Host- and CSRF-checked)
# The console loads nothing from elsewhere and is never framed (its buttons cannot be clickjacked).
CONSOLE_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
CONSOLE_HEADERS = (
    ("content-security-policy", CONSOLE_CSP),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "same-origin"),
)


@dataclass(frozen=True)
class ApiToken:
    """One accepted token; ``secret`` is left out of ``repr`` so it never reaches a log."""

    name: str
    secret: str = field(repr=False)


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
        _refuse_weak_token(name, secret)
        tokens.append(ApiToken(name, secret))
    if len({t.name for t in tokens}) != len(tokens):
        raise ValueError("IMAGEMATCH_API_TOKEN names each token once")
    return tokens


def _refuse_weak_token(name: str, secret: str) -> None:
    """ValueError (naming the token, never showing it) for a token that is easy to guess."""
    if len(secret) < MIN_TOKEN_LENGTH:
        raise ValueError(
            f"token {name!r} is too short: use at least {MIN_TOKEN_LENGTH} characters "
            "(e.g. `openssl rand -base64 32`)"
        )
    if len(set(secret)) < MIN_DISTINCT_CHARACTERS:
        raise ValueError(
            f"token {name!r} repeats too few characters to be secret: generate one "
            "(e.g. `openssl rand -base64 32`)"
        )


def _is_open(path: str) -> bool:
    return any(path == p or (p.endswith("/") and path.startswith(p)) for p in _OPEN_PATHS)


def check_csrf_field(request: Request, value: object) -> None:
    """403 unless ``value`` (a form's ``csrf_token``) equals the request's CSRF cookie."""
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not (isinstance(value, str) and cookie and hmac.compare_digest(value.encode(), cookie.encode())):
        raise HTTPException(403, "the form is out of date or was sent from another site; reload the page")


class AccessControl:
    """Who may call what (see the module docstring); installed with :meth:`install`."""

    def __init__(
        self, tokens: list[ApiToken], *, loopback_hosts_only: bool = False, session_hours: float = 12.0
    ) -> None:
        self.tokens = tokens
        self.loopback_hosts_only = loopback_hosts_only
        self.session_seconds = session_hours * 3600
        self.clock: Clock = utcnow
        self.revocations: SessionRevocations | None = None  # the ledger, set by :meth:`install`
        self.guesses = GuessLimiter()

    @classmethod
    def from_settings(cls, settings: Settings, *, loopback_hosts_only: bool = False) -> AccessControl:
        raw = settings.api_token.get_secret_value() if settings.api_token else ""
        return cls(
            parse_tokens(raw) if raw.strip() else [],
            loopback_hosts_only=loopback_hosts_only,
            session_hours=settings.session_hours,
        )

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

    def _read_session(self, request: Request) -> tuple[ApiToken, ConsoleSession] | None:
        cookie = request.cookies.get(SESSION_COOKIE, "")
        if not cookie:
            return None
        return read_session(cookie, self.tokens, now=self.clock(), max_age_seconds=self.session_seconds)

    async def _session(self, request: Request) -> ApiToken | None:
        """The token of the request's console session: signed, unexpired and not revoked."""
        found = self._read_session(request)
        if found is None:
            return None
        token, session = found
        if self.revocations is not None and await run_in_threadpool(
            self.revocations.session_revoked, session.session_id
        ):
            return None
        return token

    def end_session(self, request: Request) -> None:
        """Logout: revoke the request's session (for every instance, across restarts)."""
        found = self._read_session(request)
        if found is not None and self.revocations is not None:
            session = found[1]
            self.revocations.revoke_session(
                session.session_id, expires_at=session.expires_at(self.session_seconds)
            )

    def _bearer(self, request: Request) -> ApiToken | Response | None:
        """The bearer token's match, None without one, or a 429 while the client's address is
        backing off from failed guesses (a wrong token counts as one)."""
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not value:
            return None
        refusal = self.guess_refusal(request)
        if refusal is not None:
            return JSONResponse(
                {"detail": f"too many wrong tokens: try again in {refusal} s"},
                status_code=429,
                headers={"Retry-After": str(refusal)},
            )
        return self.record_guess(request, self.token_for(value.strip()))

    def guess_refusal(self, request: Request) -> int | None:
        """Seconds the request's client address must wait before presenting a token, or None."""
        return self.guesses.retry_after(_client_address(request), self.clock())

    def record_guess(self, request: Request, found: ApiToken | None) -> ApiToken | None:
        """Count a presented token (sign-in or bearer) for its client address; returns ``found``."""
        if found is None:
            self.guesses.failed(_client_address(request), self.clock())
        else:
            self.guesses.succeeded(_client_address(request))
        return found

    def set_session(self, response: Response, request: Request, token: ApiToken) -> None:
        """Start a new console session for ``token`` (a new random id at every login)."""
        value, _ = issue_session(token, self.clock())
        response.set_cookie(
            SESSION_COOKIE,
            value,
            max_age=int(self.session_seconds),
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
        if isinstance(bearer, Response):
            return bearer
        cookie = await self._session(request) if self.enabled and bearer is None else None
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
            if not is_same_site(request):
                return JSONResponse({"detail": "cross-site request refused"}, status_code=403)
            if cookie is not None and not path.startswith("/ui/"):
                # /v1 from the console's own scripts: they send the CSRF token as a header.
                try:
                    check_csrf_field(request, request.headers.get(CSRF_HEADER))
                except HTTPException as exc:
                    return JSONResponse({"detail": exc.detail}, status_code=403)
        return None

    def install(
        self, app: FastAPI, *, revocations: SessionRevocations | None = None, clock: Clock | None = None
    ) -> None:
        """Check every request; give each browser a CSRF cookie (``request.state.csrf_token``).
        ``revocations`` (the ledger) records logouts; ``clock`` dates and expires sessions."""
        self.revocations = revocations if revocations is not None else self.revocations
        self.clock = clock or self.clock
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
        # (The console's CSP and nosniff come from imagematch.api.headers, on every response.)
        extra = (
            _csrf_cookie_headers(request.state.csrf_token, secure=_is_https(request)) if csrf is None else []
        )

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


def _client_address(request: Request) -> str:
    """The peer address (a proxy's forwarding headers are not trusted: anyone can send them)."""
    return request.client.host if request.client else "unknown"


def _is_https(request: Request) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip()
    return request.url.scheme == "https" or forwarded == "https"
