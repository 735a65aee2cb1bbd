"""CLI pieces for the console: ``imagematch thumbnails purge`` and the checks ``serve`` makes."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from imagematch.access import AccessControl, is_loopback_host
from imagematch.config import Settings

__all__ = ["serve_access", "thumbnails_app"]

thumbnails_app = typer.Typer(help="Thumbnails the console shows.", no_args_is_help=True)
err = Console(stderr=True, soft_wrap=True)


def serve_access(settings: Settings, host: str) -> AccessControl:
    """The access control for ``imagematch serve --host host``. Exits (code 2) when the host is
    reachable from other machines and no token is set; on loopback without a token, only
    loopback ``Host`` names are answered (no DNS rebinding)."""
    try:
        access = AccessControl.from_settings(settings)
    except ValueError as exc:
        err.print(f"[red]IMAGEMATCH_API_TOKEN is not valid:[/red] {exc}")
        raise typer.Exit(2) from exc
    if access.enabled:
        return access
    if not is_loopback_host(host):
        err.print(
            f"[red]refusing to serve on {host} without a token:[/red] anyone who can reach it could read "
            "predictions and re-queue jobs. Set IMAGEMATCH_API_TOKEN (e.g. "
            '`export IMAGEMATCH_API_TOKEN="console:$(openssl rand -hex 24)"`) or serve on 127.0.0.1.'
        )
        raise typer.Exit(2)
    return AccessControl([], loopback_hosts_only=True)


@thumbnails_app.command("purge")
def purge(
    older_than: Annotated[
        float | None,
        typer.Option("--older-than", help="Days; default IMAGEMATCH_THUMBNAIL_RETENTION_DAYS (90)."),
    ] = None,
) -> None:
    """Delete query-photo thumbnails older than the retention (the catalog's are kept)."""
    from imagematch.index import SnapshotStore
    from imagematch.thumbnails import ThumbnailStore

    settings = Settings()
    days = settings.thumbnail_retention_days if older_than is None else older_than
    keep: set[str] = set()
    snapshots = SnapshotStore(settings.data_dir / "index")
    version = snapshots.current_version()
    if version is not None:
        from imagematch.index import ProductIndex

        index = ProductIndex.read_from(snapshots.root / version)
        keep = {image.sha256 for image in index.images.values()}
    removed = ThumbnailStore(settings.data_dir / "thumbnails").purge(older_than_days=days, keep=keep)
    err.print(f"removed {removed} thumbnail files older than {days:g} days")
