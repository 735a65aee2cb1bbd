"""``imagematch thumbnails``: the pictures the console shows (and the uploaded originals)."""

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
    """Delete photo thumbnails older than the retention (the served catalog's are kept), and
    uploaded originals past IMAGEMATCH_UPLOAD_RETENTION_DAYS that no job still needs. Exits 1,
    deleting no thumbnail, when the served index cannot be loaded (its images are unknown)."""
    from imagematch.retention import purge_stored_photos_for

    settings = load_settings()
    if older_than is not None:
        settings = settings.model_copy(update={"thumbnail_retention_days": older_than})
    report = purge_stored_photos_for(settings)
    err.print(report.describe())
    if report.thumbnails_refused:
        raise typer.Exit(1)
