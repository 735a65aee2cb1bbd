"""Error reports to Sentry, when ``SENTRY_DSN`` is set (optional dependency ``sentry-sdk``).

Reported: unhandled exceptions (the SDK's web-framework integrations catch those of requests) and
jobs that failed for good, tagged with their job id and kind. Never sent: photo bytes, request
bodies, local variables, cookies and credentials, URL query strings, configured secrets — every
event passes through :func:`scrub_event` (``before_send``), which rewrites its text with the
logs' :class:`~imagematch.logging_setup.Redactor`. Without a DSN nothing is imported or sent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, cast

from imagematch.config import Settings
from imagematch.log_context import current_fields
from imagematch.logging_setup import REDACTED, Redactor, configure_logging, secret_values
from imagematch.models import Job

__all__ = ["init_error_reporting", "observe_process", "report_permanent_failure", "scrub_event"]

log = logging.getLogger(__name__)
_DROPPED_HEADERS = frozenset({"authorization", "cookie", "x-zendesk-webhook-signature", "x-csrf-token"})


def observe_process(settings: Settings, *, verbose: bool = False) -> None:
    """What every entry point (CLI, ``serve``, each Modal container) calls once it has settings:
    logging as configured, and error reports when ``SENTRY_DSN`` is set. (Here, not in
    :mod:`imagematch.logging_setup`, which this module imports: no import cycle.)"""
    configure_logging(settings, verbose=verbose)
    init_error_reporting(settings)


def init_error_reporting(settings: Settings, *, transport: Any = None) -> bool:
    """Start the Sentry SDK when ``settings.sentry_dsn`` is set; returns whether it did. Without
    sentry-sdk installed, logs a warning and carries on. ``transport``: tests capture events."""
    if settings.sentry_dsn is None:
        return False
    try:
        import sentry_sdk
        from sentry_sdk.integrations.logging import LoggingIntegration
        from sentry_sdk.types import Event
    except ImportError:
        log.warning("SENTRY_DSN is set but sentry-sdk is not installed: `pip install sentry-sdk`")
        return False
    redactor = Redactor(secret_values(settings))
    options: dict[str, Any] = {"transport": transport} if transport is not None else {}
    sentry_sdk.init(
        dsn=settings.sentry_dsn.get_secret_value(),
        include_local_variables=False,  # a frame's locals may hold a photo's bytes or a token
        max_request_body_size="never",
        # Log lines stay breadcrumbs; events are the exceptions and the failed jobs reported here.
        integrations=[LoggingIntegration(level=logging.INFO, event_level=None)],
        before_send=lambda event, hint: cast("Event", scrub_event(dict(event), redactor)),
        before_breadcrumb=lambda crumb, hint: _scrub(crumb, redactor.redact),
        **options,
    )
    return True


def report_permanent_failure(job: Job, error: BaseException) -> None:
    """Send a job that failed for good, tagged with its id, kind and source (nothing without a DSN)."""
    try:
        import sentry_sdk
    except ImportError:
        return
    if not sentry_sdk.get_client().is_active():  # no DSN: init_error_reporting did not start it
        return
    with sentry_sdk.new_scope() as scope:
        scope.set_tag("job_id", str(job.id))
        scope.set_tag("kind", job.kind)
        scope.set_tag("source", job.source)
        for name, value in current_fields().items():
            scope.set_tag(name, str(value))
        scope.set_context("job", {"id": job.id, "kind": job.kind, "attempt": job.attempts})
        sentry_sdk.capture_exception(error)


def scrub_event(event: dict[str, Any], redactor: Redactor) -> dict[str, Any]:
    """``event`` without request bodies, cookies, credential headers, query strings or secrets."""
    request = event.get("request")
    if isinstance(request, dict):
        request.pop("data", None)
        request.pop("cookies", None)
        request["query_string"] = REDACTED if request.get("query_string") else ""
        headers = request.get("headers")
        if isinstance(headers, dict):
            for name in list(headers):
                if name.lower() in _DROPPED_HEADERS:
                    headers[name] = REDACTED
    scrubbed: dict[str, Any] = _scrub(event, redactor.redact)
    return scrubbed


def _scrub(value: Any, redact: Callable[[str], str]) -> Any:
    """Every string inside ``value`` (dicts, lists) redacted; bytes dropped."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, bytes | bytearray):
        return REDACTED
    if isinstance(value, dict):
        return {k: _scrub(v, redact) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v, redact) for v in value]
    return value
