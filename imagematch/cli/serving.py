"""``imagematch serve`` and ``imagematch worker``: the long-running processes."""

from __future__ import annotations

from typing import Annotated

import typer

from imagematch.cli.terminal import err, load_settings

__all__ = ["serve", "worker"]


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int | None, typer.Option(help="Job worker threads (default from settings).")] = None,
) -> None:
    """Run the HTTP API with in-process job workers (they claim from the ledger, so a crash loses nothing)."""
    import uvicorn

    from imagematch.api import create_app
    from imagematch.app import build_services, serving_model
    from imagematch.worker import WorkerPool

    settings = load_settings()
    services = build_services(settings, model=serving_model(settings))
    pool = WorkerPool(
        services.make_worker,
        size=services.settings.workers if workers is None else workers,
        poll_seconds=services.settings.poll_seconds,
        sweep=services.sweep,
        sweep_seconds=services.settings.sweep_seconds,
    )
    err.print(f"imagematch on http://{host}:{port}  (API docs: /docs)")
    uvicorn.run(create_app(services, pool=pool), host=host, port=port, log_level="warning")


def worker(
    once: Annotated[bool, typer.Option("--once", help="Process what is due, then exit.")] = False,
) -> None:
    """Run job workers without the HTTP API."""
    import threading

    from imagematch.app import build_services, serving_model
    from imagematch.worker import WorkerPool

    settings = load_settings()
    services = build_services(settings, model=serving_model(settings))
    if once:
        services.sweep()
        done = services.make_worker().drain()
        err.print(f"processed {done} jobs")
        return
    pool = WorkerPool(
        services.make_worker,
        size=max(1, services.settings.workers),
        poll_seconds=services.settings.poll_seconds,
        sweep=services.sweep,
        sweep_seconds=services.settings.sweep_seconds,
    )
    pool.start()
    err.print(f"{max(1, services.settings.workers)} workers running; Ctrl-C to stop")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pool.stop()
