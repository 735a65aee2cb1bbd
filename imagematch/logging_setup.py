"""Process logging: text on a terminal, JSON lines elsewhere, each line with what it is about.

``IMAGEMATCH_LOG_FORMAT`` is ``text``, ``json`` or ``auto`` (default: text when stderr is a
terminal, JSON otherwise — so on Modal, in containers and under systemd). Every line carries the
fields bound in :mod:`imagematch.log_context` (``request_id``, ``job_id``, ``kind``, ``source``,
``entity``, ``attempt``, ``worker``) where they apply. JSON is written by python-json-logger.

Nothing secret reaches a line: a :class:`Redactor` on the handler rewrites every record (message,
arguments, extra fields, traceback) before any formatter sees it — the values of the configured
secrets (API tokens, Zendesk credentials, webhook secrets, the Supabase key, the database
password), ``Authorization``-style credentials, ``key=value`` secrets, and the query string of
any URL (photo URLs are often signed).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable
from typing import TextIO

from pythonjsonlogger.json import JsonFormatter

from imagematch.config import Settings, redact_url
from imagematch.log_context import LOG_FIELDS, current_fields

__all__ = [
    "REDACTED",
    "ContextFilter",
    "Redactor",
    "configure_logging",
    "secret_values",
    "wants_json",
]

REDACTED = "[redacted]"
_URL = re.compile(r"(?i)\b(?:https?|wss?|postgres(?:ql)?)://[^\s\"'<>]+")
_CREDENTIAL = re.compile(r"(?i)\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=:-]{8,}")
_SECRET_FIELD = re.compile(
    r"(?i)\b(authorization|signature|x-zendesk-webhook-signature|api[_-]?token|access[_-]?token|"
    r"oauth[_-]?token|token|secret|password|passwd|service[_-]?key|api[_-]?key|dsn)"
    r"(\"?'?\s*[:=]\s*\"?'?)([^\s\"',&;}]+)"
)
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
_HANDLER_NAME = "imagematch"
_QUIET_LOGGERS = ("httpx", "httpcore", "hpack", "urllib3", "PIL", "multipart")


def secret_values(settings: Settings) -> list[str]:
    """Every secret value ``settings`` holds (each token of ``IMAGEMATCH_API_TOKEN`` too), so that
    a log line never carries one, even where no pattern would catch it."""
    found: list[str] = []
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if hasattr(value, "get_secret_value"):
            found.append(str(value.get_secret_value()))
    if settings.api_token is not None:
        found += re.split(r"[,:{}\"\s]+", settings.api_token.get_secret_value())
    url = settings.database_url or ""
    if "@" in url and ":" in url.partition("://")[2].partition("@")[0]:
        found.append(url.partition("://")[2].partition("@")[0].partition(":")[2])
    return sorted({v for v in found if len(v) >= 6}, key=len, reverse=True)


class Redactor(logging.Filter):
    """Rewrites each record so that no secret, credential or URL query string is formatted."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets = sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        text = _URL.sub(lambda m: _without_query(m.group(0)), text)
        text = _CREDENTIAL.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
        return _SECRET_FIELD.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # arguments that do not fit the format: keep the line, not its arguments
            message = f"{record.msg} (unformattable arguments)"
        record.msg, record.args = self.redact(message), None
        if record.exc_info:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text, record.exc_info = self.redact(text), None
        elif record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        for name, value in list(vars(record).items()):
            if name not in _STANDARD_ATTRS and isinstance(value, str):
                setattr(record, name, self.redact(value))
        return True


def _without_query(url: str) -> str:
    """The URL without its query string, and without the password of its user info."""
    try:
        url = redact_url(url)
    except ValueError:  # not parseable (e.g. brackets in the host): drop any user info outright
        url = re.sub(r"//[^/@]*@", "//***@", url)
    base, sep, _ = url.partition("?")
    return f"{base}?{REDACTED}" if sep else base


class ContextFilter(logging.Filter):
    """Puts the bound context fields on each record (``record.job_id`` …), and ``record.context``:
    the same as ``key=value`` text for the text format."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = current_fields()
        for name in LOG_FIELDS:
            if name in fields and not hasattr(record, name):
                setattr(record, name, fields[name])
        shown = [f"{name}={getattr(record, name)}" for name in LOG_FIELDS if hasattr(record, name)]
        record.context = f"  [{' '.join(shown)}]" if shown else ""
        return True


class _JsonLines(JsonFormatter):
    def __init__(self) -> None:
        super().__init__(
            "%(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp=True,
            reserved_attrs=[*_STANDARD_ATTRS, "context"],
        )


def wants_json(log_format: str, stream: TextIO) -> bool:
    """``json``/``text`` as asked; ``auto``: JSON unless ``stream`` is a terminal."""
    if log_format in ("json", "text"):
        return log_format == "json"
    isatty = getattr(stream, "isatty", None)
    return not (isatty and isatty())


def configure_logging(
    settings: Settings | None = None, *, verbose: bool = False, stream: TextIO | None = None
) -> logging.Handler:
    """Give the root logger a handler that redacts, adds the context fields and formats as
    ``settings.log_format`` says (replacing the one an earlier call added); returns it. Level:
    ``settings.log_level`` (default INFO for JSON, WARNING for text), DEBUG with ``verbose``."""
    settings = settings or Settings()
    stream = stream or sys.stderr
    as_json = wants_json(settings.log_format, stream)
    handler = _text_handler(stream) if not as_json else logging.StreamHandler(stream)
    handler.setFormatter(_JsonLines() if as_json else logging.Formatter("%(message)s%(context)s"))
    handler.addFilter(Redactor(secret_values(settings)))
    handler.addFilter(ContextFilter())
    handler.set_name(_HANDLER_NAME)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:  # ours, from a last call
        root.removeHandler(old)
    root.addHandler(handler)
    # A terminal shows warnings only (as before); JSON lines keep INFO: they follow each job.
    default = logging.INFO if as_json else logging.WARNING
    level = logging.DEBUG if verbose else logging.getLevelName((settings.log_level or "").upper())
    level = level if isinstance(level, int) else default
    root.setLevel(level)
    for name in _QUIET_LOGGERS:  # their INFO lines are per request: noise at our INFO level
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
    return handler


def _text_handler(stream: TextIO) -> logging.Handler:
    from rich.console import Console
    from rich.logging import RichHandler

    return RichHandler(console=Console(file=stream, soft_wrap=True), show_path=False)
