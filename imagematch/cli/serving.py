"""``imagematch serve`` and ``imagematch worker``: the long-running processes."""

from __future__ import annotations

from typing import Annotated

import typer

from imagematch.api.access import AccessControl
from imagematch.cli.terminal import err, load_settings
from imagematch.config import Settings
from imagematch.request_origin import is_loopback_host

__all__ = ["serve", "serve_access", "unsigned_webhook_settings", "worker"]


def unsigned_webhook_settings(settings: Settings) -> list[str]:
    """The ``*_ALLOW_UNSIGNED`` settings in effect (set, and no signing secret to override them)."""
    return [
        name
        for name, allowed, secret in (
            (
                "IMAGEMATCH_CATALOG_ALLOW_UNSIGNED",
                settings.catalog_allow_unsigned,
                settings.catalog_webhook_secret,
            ),
            (
                "IMAGEMATCH_ZENDESK_ALLOW_UNSIGNED",
                settings.zendesk_allow_unsigned,
                settings.zendesk_webhook_secret,
            ),
        )
        if allowed and secret is None
    ]


def serve_access(settings: Settings, host: str) -> AccessControl:
    """The access control for ``imagematch serve --host host``. Exits (code 2) when the host is
    reachable from other machines and no token is set, or unsigned webhooks are allowed; on
    loopback without a token, only loopback ``Host`` names are answered (no DNS rebinding)."""
    try:
        access = AccessControl.from_settings(settings)
    except ValueError as exc:
        err.print(f"[red]IMAGEMATCH_API_TOKEN is not valid:[/red] {exc}")
        raise typer.Exit(2) from exc
    unsigned = unsigned_webhook_settings(settings)
    if unsigned and not is_loopback_host(host):
        err.print(
            f"[red]refusing to serve on {host} with {' and '.join(unsigned)}:[/red] anyone who can reach "
            "it could post webhooks (delete products, queue scans). Set the webhook signing secrets "
            "or serve on 127.0.0.1."
        )
        raise typer.Exit(2)
    if access.enabled:
        return access
    if not is_loopback_host(host):
        err.print(
            f"[red]refusing to serve on {host} without a token:[/red] anyone who can reach it could read "
            "predictions and re-queue jobs. Set IMAGEMATCH_API_TOKEN (e.g. "
            '`export IMAGEMATCH_API_TOKEN="console:$(openssl rand -base64 32)"`) or serve on 127.0.0.1.'
        )
        raise typer.Exit(2)
    return AccessControl([], loopback_hosts_only=True)


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int | None, typer.Option(help="Job worker threads (default from settings).")] = None,
) -> None:
    """Run the HTTP API with in-process job workers (they claim from the ledger, so a crash loses nothing)."""
    import uvicorn

    from imagematch.api import create_app
    from imagematch.app import build_services, serving_model
    from imagematch.operations import sweep
    from imagematch.runtime import freeze_startup_objects
    from imagematch.worker import WorkerPool

    settings = load_settings()
    access = serve_access(settings, host)
    services = build_services(settings, embedder=serving_model(settings))
    pool = WorkerPool(
        services.make_worker,
        size=services.settings.workers if workers is None else workers,
        poll_seconds=services.settings.poll_seconds,
        sweep=lambda: sweep(services, purge_due=True),
        sweep_seconds=services.settings.sweep_seconds,
    )
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    err.print(f"imagematch console: http://{shown}:{port}/ui/jobs  (API docs: /docs)")
    app = create_app(services, pool=pool, access=access)
    freeze_startup_objects()
    # log_config=None: uvicorn's lines go through our handler (JSON, redacted) like every other.
    uvicorn.run(app, host=host, port=port, log_level="warning", log_config=None)


def worker(
    once: Annotated[bool, typer.Option("--once", help="Process what is due, then exit.")] = False,
) -> None:
    """Run job workers without the HTTP API."""
    import threading

    from imagematch.app import build_services, serving_model
    from imagematch.operations import sweep
    from imagematch.worker import WorkerPool

    settings = load_settings()
    services = build_services(settings, embedder=serving_model(settings))
    if once:
        sweep(services)
        done = services.make_worker().drain()
        err.print(f"processed {done} jobs")
        return
    pool = WorkerPool(
        services.make_worker,
        size=max(1, services.settings.workers),
        poll_seconds=services.settings.poll_seconds,
        sweep=lambda: sweep(services, purge_due=True),
        sweep_seconds=services.settings.sweep_seconds,
    )
    pool.start()
    err.print(f"{max(1, services.settings.workers)} workers running; Ctrl-C to stop")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pool.stop()
