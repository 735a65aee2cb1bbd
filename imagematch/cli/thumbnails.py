"""``imagematch thumbnails``: the pictures the console shows."""

from __future__ import annotations

from typing import Annotated

import typer

from imagematch.cli.terminal import err, load_settings

__all__ = ["app"]

app = typer.Typer(help="Thumbnails the console shows.", no_args_is_help=True)


@app.command("purge")
def purge(
    older_than: Annotated[
        float | None,
        typer.Option("--older-than", help="Days; default IMAGEMATCH_THUMBNAIL_RETENTION_DAYS (90)."),
    ] = None,
) -> None:
    """Delete photo thumbnails older than the retention (the served catalog's are kept)."""
    from imagematch.errors import IndexNotBuiltError
    from imagematch.index import SnapshotStore
    from imagematch.thumbnails import ThumbnailStore

    settings = load_settings()
    days = settings.thumbnail_retention_days if older_than is None else older_than
    try:  # the served catalog's images, live updates included
        index = SnapshotStore(settings.data_dir / "index").load(embedder_id=None)
        keep = {image.sha256 for image in index.images.values()}
    except IndexNotBuiltError:
        keep = set()
    removed = ThumbnailStore(settings.data_dir / "thumbnails").purge(older_than_days=days, keep=keep)
    err.print(f"removed {removed} thumbnail files older than {days:g} days")
