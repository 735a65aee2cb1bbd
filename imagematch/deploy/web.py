"""The deployed HTTP apps, without Modal: the API (no model: ``/v1/match`` is answered by the GPU
class) and the public webhook endpoint. ``route`` makes each app's dispatch from its services (on
Modal: spawns routed by what each kind needs, after committing this container's uploads).
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI

from imagematch.api import create_app, create_webhook_app
from imagematch.app import Services, build_services
from imagematch.config import Settings
from imagematch.dispatch import Dispatch
from imagematch.errors import ImageMatchError, ServiceUnavailableError
from imagematch.models import MatchRequest, MatchResult

__all__ = ["RemoteMatch", "build_web_app", "build_webhook_app"]

RETRY_SECONDS = 5.0


class RemoteMatch:
    """``POST /v1/match`` answered in another container (``call``: Modal's ``.remote``). Its own
    errors (not an image, no index) pass through; a timeout or a failed call becomes a
    ServiceUnavailableError, which the API answers with 503 and ``Retry-After``, not a 500."""

    def __init__(self, call: Callable[[bytes, MatchRequest], MatchResult]) -> None:
        self._call = call

    def __call__(self, data: bytes, request: MatchRequest) -> MatchResult:
        try:
            return self._call(data, request)
        except ImageMatchError:
            raise
        except Exception as exc:
            raise ServiceUnavailableError(
                f"the matcher is unavailable ({type(exc).__name__}); try again", retry_after=RETRY_SECONDS
            ) from exc


def build_web_app(
    settings: Settings,
    *,
    route: Callable[[Services], Dispatch],
    match: Callable[[bytes, MatchRequest], MatchResult],
) -> FastAPI:
    """The HTTP API as deployed: ``create_app`` over services without a model; ``/v1/match`` is
    answered by ``match`` and new jobs go to ``route(services)``."""
    services = build_services(settings, embedder=False)
    services.remote_matcher = RemoteMatch(match)
    return create_app(services, dispatch=route(services))


def build_webhook_app(settings: Settings, *, route: Callable[[Services], Dispatch]) -> FastAPI:
    """The webhook endpoint as deployed: only signature-verified routes over the ledger (no
    model, no Volume), each accepted delivery's job handed to ``route(services)``."""
    services = build_services(settings, embedder=False)
    return create_webhook_app(settings, services.ledger, dispatch=route(services))
