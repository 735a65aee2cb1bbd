"""``imagematch zendesk …``: Zendesk tickets whose photos were never matched; the sidebar app's zip."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from imagematch.cli.terminal import JsonFlag, err, fail, load_settings, progress_bar
from imagematch.errors import ImageMatchError
from imagematch.ledger import open_ledger_for

__all__ = ["app"]

app = typer.Typer(help="Zendesk tickets: scan for photos that were never matched.", no_args_is_help=True)


@app.command("scan")
def zendesk_scan(
    since: Annotated[datetime, typer.Option(help="Tickets updated on/after this date (YYYY-MM-DD, UTC).")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only count what would be queued.")] = False,
    limit: Annotated[int | None, typer.Option(help="Scan at most this many tickets.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Queue a scan of every ticket updated since DATE with image attachments that have no
    prediction (Incremental Ticket Export), and re-queue failed ones. Idempotent."""
    import httpx

    from imagematch.sources.zendesk import scan_tickets, zendesk_client_for

    settings = load_settings()
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    ledger = open_ledger_for(settings)
    http = httpx.Client(timeout=settings.fetch_timeout_seconds)
    try:
        client = zendesk_client_for(settings, http)
        with progress_bar() as progress:
            task = progress.add_task("scanning tickets", total=limit)
            report = scan_tickets(
                client,
                ledger,
                since=since,
                max_bytes=settings.max_image_bytes,
                dry_run=dry_run,
                limit=limit,
                progress=lambda n: progress.advance(task, n),
            )
    except ImageMatchError as exc:
        raise fail(str(exc)) from exc
    finally:
        http.close()
        ledger.close()
    verb = "would queue" if dry_run else "queued"
    err.print(
        f"scanned {report.tickets_scanned} tickets: {report.attachments_missing} image attachments "
        f"without a prediction; {verb} {report.tickets_queued} ticket scans and "
        f"{'would re-queue' if dry_run else 're-queued'} {report.jobs_requeued} failed images"
    )
    if as_json:
        print(json.dumps(report.summary()))


app.command("backfill", hidden=True)(zendesk_scan)  # the old name, for one release


app_commands = typer.Typer(help="The Zendesk ticket-sidebar app.", no_args_is_help=True)
app.add_typer(app_commands, name="app")


@app_commands.command("package")
def zendesk_app_package(
    out: Annotated[Path, typer.Option(help="Where to write the zip.")] = Path("imagematch-zendesk-app.zip"),
    api_url: Annotated[
        str | None,
        typer.Option(help="The imagematch URL agents' Zendesk calls (default: IMAGEMATCH_PUBLIC_URL)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Build the ticket-sidebar app (Zendesk App Framework v2) as a zip to upload in Admin Center
    (Apps and integrations > Zendesk Support apps > Upload private app) or with `zcli apps:create`."""
    from imagematch.sources.zendesk.app_package import package_app

    url = api_url or load_settings().public_url
    try:
        package = package_app(out, api_url=url)
    except ImageMatchError as exc:
        raise fail(str(exc)) from exc
    for warning in package.warnings:
        err.print(f"[yellow]warning:[/] {warning}")
    err.print(
        f"wrote {package.path} ({len(package.files)} files; domainWhitelist {package.domain_whitelist})"
    )
    if as_json:
        print(json.dumps({"path": str(package.path), "files": package.files, "warnings": package.warnings}))
