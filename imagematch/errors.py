"""Error types. Every failure of a job is classified as transient (retry) or permanent (give up)."""

from __future__ import annotations

__all__ = [
    "EmbedderMismatchError",
    "FeatureDisabledError",
    "ImageMatchError",
    "IndexNotBuiltError",
    "NoHandlerError",
    "PermanentError",
    "ServiceUnavailableError",
    "SubjectGoneError",
    "TransientError",
]


class ImageMatchError(Exception):
    """Base class for imagematch's own errors."""


class TransientError(ImageMatchError):
    """Worth retrying later: network errors, timeouts, HTTP 429/5xx, database blips.

    ``retry_after`` (seconds) carries a server's hint, e.g. an HTTP ``Retry-After`` header.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(ImageMatchError):
    """Retrying cannot help: not an image, too large, HTTP 404, bad input."""


class SubjectGoneError(ImageMatchError):
    """The thing a job was about (ticket, product, row) no longer exists: the job is skipped."""


class IndexNotBuiltError(ImageMatchError):
    """No index snapshot exists yet: run ``imagematch index build`` first."""


class EmbedderMismatchError(ImageMatchError):
    """An index snapshot was built by a different embedder than the one asked to search it."""


class ServiceUnavailableError(TransientError):
    """A service this process relies on to answer (on Modal: the GPU matcher) timed out or failed:
    the caller should retry (HTTP 503 with ``Retry-After``), unlike a bad upstream URL (502)."""


class NoHandlerError(SubjectGoneError):
    """No handler is registered for a job's kind in this process (the job is skipped)."""


class FeatureDisabledError(SubjectGoneError):
    """The job's work is switched off by a setting (e.g. Zendesk notes): the job is skipped."""
