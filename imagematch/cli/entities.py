"""Entities from the terminal: ``imagematch rematch`` (re-match from stored photo vectors)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer

from imagematch.cli.terminal import JsonFlag, err, fail, load_settings, progress_bar

__all__ = ["rematch"]


def rematch(
    entity: Annotated[
        str | None, typer.Option(help="Only this entity, as TYPE/ID (e.g. ticket/101).")
    ] = None,
    since: Annotated[
        datetime | None, typer.Option(help="Only entities with a photo on/after this date (YYYY-MM-DD).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Re-match entities now from their stored photo vectors (no photo is embedded again)."""
    from imagematch.app import build_services
    from imagematch.entities import EntityRef
    from imagematch.errors import SubjectGoneError

    services = build_services(load_settings())
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    try:
        refs = (
            [EntityRef.parse(entity)]
            if entity
            else [e.ref for e in services.entities.all_entities(since=since)]
        )
    except ValueError as exc:
        raise fail(f"--entity must look like TYPE/ID: {exc}") from exc
    tops: dict[str, str | None] = {}
    with progress_bar() as progress:
        task = progress.add_task("re-matching", total=len(refs))
        for ref in refs:
            try:
                rows = services.entities.rematch(ref)
                tops[str(ref)] = rows[0].product_id if rows else None
            except SubjectGoneError as exc:  # kept as it was
                err.print(f"{ref}: {exc}")
            progress.advance(task)
    version = services.index.get().served_version
    err.print(f"re-matched {len(tops)} entities against index {version}")
    if as_json:
        print(json.dumps({"index_version": version, "top_products": tops}))
    services.close()
