"""Command line: ``imagematch --help``. Progress goes to stderr; with ``--json`` the last stdout line
is one JSON object, so scripts can ``tail -n1``."""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from imagematch.backfill import BackfillScope
from imagematch.config import Settings
from imagematch.errors import ImageMatchError
from imagematch.ledger import open_ledger_for
from imagematch.models import JobStatus, Match, NewJob

if TYPE_CHECKING:
    from imagematch.evaluation import EvalReport

app = typer.Typer(help="Tell which catalog product is in a photo.", no_args_is_help=True)
index_app = typer.Typer(help="Build and inspect the product index.", no_args_is_help=True)
jobs_app = typer.Typer(help="Inspect and retry jobs in the ledger.", no_args_is_help=True)
db_app = typer.Typer(help="The ledger database.", no_args_is_help=True)
catalog_app = typer.Typer(help="Catalog change events (webhooks).", no_args_is_help=True)
app.add_typer(index_app, name="index")
app.add_typer(jobs_app, name="jobs")
app.add_typer(db_app, name="db")
app.add_typer(catalog_app, name="catalog")
zendesk_app = typer.Typer(
    help="Zendesk tickets: backfill photos that were never matched.", no_args_is_help=True
)
app.add_typer(zendesk_app, name="zendesk")

out = Console()
err = Console(stderr=True, soft_wrap=True)
JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object as the last line.")]


def _settings() -> Settings:
    return Settings()


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=False,
    )


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(code=1)


@app.callback()
def _main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=err, show_path=False)],
    )


def _print_build_report(report: Any) -> None:
    table = Table(title=f"Index {report.version}", show_header=False)
    for label, value in [
        ("products", report.products),
        ("images listed", report.images),
        ("embedded", report.embedded),
        ("from cache", report.cached),
        ("failed images", len(report.failed_images)),
        ("products without a usable image", len(report.products_without_images)),
        ("seconds", f"{report.seconds:.1f}"),
    ]:
        table.add_row(label, str(value))
    err.print(table)
    for problem in report.catalog_problems:
        err.print(f"[yellow]catalog:[/yellow] {problem}")
    for failed in report.failed_images:
        err.print(f"[yellow]image failed:[/yellow] {failed.product_id} {failed.uri}: {failed.reason}")
    for product_id, why in report.products_without_images.items():
        err.print(f"[yellow]no usable image:[/yellow] {product_id}: {why}")


@index_app.command("build")
def index_build(
    catalog: Annotated[
        str | None,
        typer.Option(
            help="Catalog JSON/CSV (path, file:// or http(s) URL), postgresql://… (catalog tables) "
            "or supabase:. Default: IMAGEMATCH_CATALOG_SOURCE."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Embed the catalog's images (only new ones: a cache keeps the rest) and publish a snapshot."""
    from imagematch.app import build_services
    from index_builder import rebuild_catalog_index

    settings = _settings()
    catalog = catalog or settings.catalog_source
    if not catalog:
        raise _fail("give --catalog or set IMAGEMATCH_CATALOG_SOURCE")
    services = build_services(settings)
    with _progress() as progress:
        task = progress.add_task("embedding catalog images", total=None)
        try:
            _, report = rebuild_catalog_index(
                services,
                catalog,
                progress=lambda n: progress.advance(task, n),
                on_catalog=lambda total: progress.update(task, total=total),
            )
        except ImageMatchError as exc:
            raise _fail(str(exc)) from exc
    _print_build_report(report)
    if as_json:
        print(json.dumps(report.summary()))


def _match_table(title: str, matches: list[Match]) -> Table:
    table = Table(title=title)
    for column in ("#", "product", "name", "category", "score"):
        table.add_column(column)
    for rank, m in enumerate(matches, start=1):
        table.add_row(str(rank), m.product_id, m.name, m.category, f"{m.score:.3f}")
    return table


@app.command()
def match(
    images: Annotated[list[Path], typer.Argument(help="Image files to match.", exists=True, dir_okay=False)],
    top_k: Annotated[int, typer.Option(help="Products per image.")] = 5,
    as_json: JsonFlag = False,
) -> None:
    """Show the top products for each image."""
    from imagematch.app import build_services
    from imagematch.images import decode_image

    services = build_services(_settings())
    results: dict[str, Any] = {}
    for path in images:
        try:
            image = decode_image(
                path.read_bytes(), max_bytes=services.limits.max_bytes, max_pixels=services.limits.max_pixels
            )
            result = services.matcher.match_image(image, top_k=top_k)
        except ImageMatchError as exc:
            err.print(f"[red]{path}:[/red] {exc}")
            results[str(path)] = {"error": str(exc)}
            continue
        results[str(path)] = result.model_dump(mode="json")
        note = "  [yellow](no confident match)[/yellow]" if result.no_confident_match else ""
        (err if as_json else out).print(_match_table(f"{path}{note}", result.matches))
    if as_json:
        print(json.dumps(results))
    if any("error" in r for r in results.values()):
        raise typer.Exit(code=1)


@app.command("eval")
def eval_(
    catalog: Annotated[Path, typer.Option(help="products.json of the catalog.", exists=True)],
    queries: Annotated[
        Path, typer.Option(help="queries.jsonl: {image, product_id, split?} lines.", exists=True)
    ],
    limit: Annotated[int | None, typer.Option(help="Only the first N queries.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Product-level recall@1/@5, MRR and images/s on labelled photos, overall and per split."""
    from imagematch.app import build_services
    from imagematch.evaluation import evaluate, load_queries
    from imagematch.images import sha256_hex
    from imagematch.index import SnapshotStore
    from index_builder import rebuild_catalog_index

    services = build_services(_settings())
    data_dir = services.settings.data_dir
    # Each catalog gets its own index under data/eval/, so evaluating never replaces the served one.
    snapshots = SnapshotStore(data_dir / "eval" / sha256_hex(str(catalog.resolve()).encode())[:12], keep=2)
    labelled = load_queries(queries)[:limit]
    with _progress() as progress:
        task = progress.add_task("catalog", total=None)
        index, report = rebuild_catalog_index(
            services,
            str(catalog.resolve()),
            snapshots=snapshots,
            progress=lambda n: progress.advance(task, n),
            on_catalog=lambda total: progress.update(task, total=total),
        )
        query_task = progress.add_task("queries", total=len(labelled))
        result = evaluate(
            labelled,
            embedder=services.embedder,
            index=index,
            limits=services.limits,
            batch_size=services.settings.batch_size,
            progress=lambda n: progress.advance(query_task, n),
        )
    recipe = ", ".join(f"{key}={value}" for key, value in index.recipe.items())
    table = Table(title=f"{services.embedder.embedder_id} ({recipe}) on {len(index.products)} products")
    for column in ("queries", "n", "recall@1", "recall@5", "MRR"):
        table.add_column(column)
    for name, row in [("all", result.summary([])), *result.per_split().items()]:
        table.add_row(
            name if name == "all" else f"split {name}",
            str(row["n"]),
            f"{row['recall@1']:.3f}",
            f"{row['recall@5']:.3f}",
            f"{row['mrr']:.3f}",
        )
    table.caption = f"{result.images_per_second:.1f} query images/s end to end"
    (err if as_json else out).print(table)
    by_category = Table(title="per category")
    for column in ("category", "n", "recall@1", "recall@5"):
        by_category.add_column(column)
    for category, cat_row in result.per_category.items():
        by_category.add_row(
            category, str(cat_row["n"]), f"{cat_row['recall@1']:.2f}", f"{cat_row['recall@5']:.2f}"
        )
    err.print(by_category)
    err.print(_confidence_table(result, services.settings.min_score))
    for skipped in result.skipped:
        err.print(f"[yellow]skipped:[/yellow] {skipped}")
    if report.failed_images:
        err.print(f"[yellow]{len(report.failed_images)} catalog images failed[/yellow]")
    if as_json:
        print(json.dumps({**result.summary(), "embedder": services.embedder.embedder_id, **index.recipe}))


def _confidence_table(result: EvalReport, min_score: float) -> Table:
    """Coverage and precision per threshold, overall and for each split of the queries."""
    from imagematch.evaluation import CONFIDENCE_THRESHOLDS

    table = Table(title=f"no-confident-match threshold (IMAGEMATCH_MIN_SCORE={min_score})")
    table.add_column("best score ≥")
    scopes: list[str | None] = [None, *result.splits]
    for scope in scopes:
        label = "" if scope is None else f" ({scope})"
        table.add_column(f"coverage{label}")
        table.add_column(f"precision{label}")
    for threshold in sorted({*CONFIDENCE_THRESHOLDS, min_score}):
        cells = [f"{threshold:.2f}"]
        for scope in scopes:
            row = result.confidence_at(threshold, scope)
            cells += [f"{row['coverage']:.3f}", f"{row['precision']:.3f}"]
        table.add_row(*cells, style="bold" if threshold == min_score else None)
    return table


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int | None, typer.Option(help="Job worker threads (default from settings).")] = None,
) -> None:
    """Run the HTTP API with in-process job workers (they claim from the ledger, so a crash loses nothing)."""
    import uvicorn

    from imagematch.api import create_app
    from imagematch.app import build_services
    from imagematch.worker import WorkerPool

    services = build_services(_settings())
    pool = WorkerPool(
        services.make_worker,
        size=services.settings.workers if workers is None else workers,
        poll_seconds=services.settings.poll_seconds,
        sweep=services.sweep,
        sweep_seconds=services.settings.sweep_seconds,
    )
    err.print(f"imagematch on http://{host}:{port}  (API docs: /docs)")
    uvicorn.run(create_app(services, pool=pool), host=host, port=port, log_level="warning")


@app.command()
def worker(
    once: Annotated[bool, typer.Option("--once", help="Process what is due, then exit.")] = False,
) -> None:
    """Run job workers without the HTTP API."""
    import threading

    from imagematch.app import build_services
    from imagematch.worker import WorkerPool

    services = build_services(_settings())
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


@app.command()
def submit(
    images: Annotated[list[Path], typer.Argument(help="Image files to submit.", exists=True, dir_okay=False)],
    source: Annotated[str, typer.Option(help="Recorded source of the jobs.")] = "cli",
    as_json: JsonFlag = False,
) -> None:
    """Persist images and their jobs (processed by `serve` or `worker`); prints the job ids."""
    from imagematch.blobs import BlobStore
    from imagematch.pipeline import image_ref_for_blob

    settings = _settings()
    ledger = open_ledger_for(settings)
    blobs = BlobStore(settings.data_dir / "blobs")
    ids = []
    for path in images:
        digest = blobs.put(path.read_bytes())
        job, created = ledger.submit(
            NewJob(
                source=source,
                idempotency_key=f"upload:{digest}",
                payload={"image": image_ref_for_blob(digest), "file_name": path.name},
            )
        )
        ids.append(job.id)
        err.print(f"{path}: job {job.id} {'submitted' if created else 'already known'} ({job.status})")
    if as_json:
        print(json.dumps({"job_ids": ids}))


@app.command()
def sweep(as_json: JsonFlag = False) -> None:
    """Re-queue due retries and jobs whose worker lease expired; report stale pending jobs."""

    settings = _settings()
    ledger = open_ledger_for(settings)
    report = ledger.sweep(
        max_attempts=settings.max_attempts,
        pending_grace_seconds=settings.pending_grace_seconds,
    )
    summary = {
        "retries_due": report.retries_due,
        "leases_expired": report.leases_expired,
        "gave_up": report.gave_up,
        "pending_waiting": len(report.due_pending),
    }
    err.print(", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in summary.items()))
    if as_json:
        print(json.dumps(summary))


@app.command()
def backfill(
    source: Annotated[str | None, typer.Option(help="Only jobs from this source (api, cli, …).")] = None,
    since: Annotated[
        datetime | None, typer.Option(help="Only jobs created on/after this date (YYYY-MM-DD).")
    ] = None,
    status: Annotated[
        BackfillScope, typer.Option(help="missing: failed+skipped; failed; all: reprocess everything.")
    ] = BackfillScope.MISSING,
    limit: Annotated[int | None, typer.Option(help="At most this many jobs.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only count what would be queued.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Queue again every image that has no successful prediction (idempotent)."""
    from imagematch.backfill import find_backfill_jobs, run_backfill

    ledger = open_ledger_for(_settings())
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    jobs = list(find_backfill_jobs(ledger, scope=status, source=source, since=since, limit=limit))
    with _progress() as progress:
        task = progress.add_task("dry run" if dry_run else "re-queuing", total=len(jobs))
        report = run_backfill(
            ledger, iter(jobs), dry_run=dry_run, progress=lambda n: progress.advance(task, n)
        )
    verb = "would re-queue" if dry_run else "re-queued"
    found = ", ".join(f"{n} {s}" for s, n in report.by_status.items()) or "nothing"
    err.print(f"found {found}; {verb} {report.matched if dry_run else report.requeued}")
    if as_json:
        print(json.dumps({"matched": report.matched, "requeued": report.requeued, "dry_run": dry_run}))


@jobs_app.command("list")
def jobs_list(
    status: Annotated[JobStatus | None, typer.Option(help="Only jobs in this status.")] = None,
    source: Annotated[str | None, typer.Option(help="Only jobs from this source.")] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 20,
    as_json: JsonFlag = False,
) -> None:
    """List jobs, newest first."""
    ledger = open_ledger_for(_settings())
    jobs = ledger.list_jobs(status=status, source=source, limit=limit)
    if as_json:
        print(json.dumps([j.model_dump(mode="json") for j in jobs]))
        return
    table = Table()
    for column in ("id", "status", "source", "attempts", "updated", "error"):
        table.add_column(column)
    for j in jobs:
        table.add_row(
            str(j.id),
            j.status,
            j.source,
            str(j.attempts),
            f"{j.updated_at:%Y-%m-%d %H:%M:%S}",
            j.last_error or "",
        )
    out.print(table)


@jobs_app.command("retry")
def jobs_retry(
    job_id: Annotated[int | None, typer.Argument(help="The job to run again.")] = None,
    all_failed: Annotated[bool, typer.Option("--all-failed", help="Every failed job.")] = False,
) -> None:
    """Run a job (or every failed job) again."""
    ledger = open_ledger_for(_settings())
    if all_failed:
        err.print(f"re-queued {ledger.requeue_failed()} failed jobs")
    elif job_id is not None:
        job = ledger.requeue(job_id)
        if job is None:
            raise _fail(f"no job {job_id}")
        err.print(f"job {job.id} is {job.status}")
    else:
        raise _fail("give a job id or --all-failed")


@db_app.command("migrate")
def db_migrate() -> None:
    """Create or upgrade the ledger schema (SQLite, or Postgres from supabase/migrations)."""
    settings = _settings()
    ledger = open_ledger_for(settings)
    ledger.migrate()
    ledger.close()
    where = (
        "Supabase: apply supabase/migrations with `supabase db push`"
        if settings.supabase_url
        else "up to date"
    )
    err.print(f"ledger schema: {where}")


@catalog_app.command("send-event")
def catalog_send_event(
    event_file: Annotated[
        Path, typer.Argument(help="JSON file holding one catalog event.", exists=True, dir_okay=False)
    ],
    url: Annotated[str, typer.Option(help="The webhook's URL.")] = "http://127.0.0.1:8000/webhooks/catalog",
    as_json: JsonFlag = False,
) -> None:
    """Sign a catalog event with IMAGEMATCH_CATALOG_WEBHOOK_SECRET and POST it, as a shop would."""
    import time

    import httpx

    from imagematch.sources.catalog import parse_catalog_event, sign_catalog_event

    settings = _settings()
    body = event_file.read_bytes()
    try:
        parse_catalog_event(body)  # refuse locally what the server would refuse
    except ImageMatchError as exc:
        raise _fail(f"{event_file}: {exc}") from exc
    headers = {"Content-Type": "application/json"}
    if settings.catalog_webhook_secret is not None:
        secret = settings.catalog_webhook_secret.get_secret_value()
        headers = sign_catalog_event(secret, int(time.time()), body)
    else:
        err.print("[yellow]IMAGEMATCH_CATALOG_WEBHOOK_SECRET is not set: sending it unsigned[/yellow]")
    try:
        response = httpx.post(url, content=body, headers=headers, timeout=settings.fetch_timeout_seconds)
    except httpx.HTTPError as exc:
        raise _fail(f"cannot reach {url}: {exc}") from exc
    try:
        answer: Any = response.json()
    except ValueError:
        answer = response.text[:500]
    if not isinstance(answer, dict):
        answer = {"detail": answer}
    if response.is_error:
        raise _fail(f"HTTP {response.status_code}: {answer.get('detail', answer)}")
    err.print(f"HTTP {response.status_code}: job {answer.get('id')} is {answer.get('status')}")
    if as_json:
        print(json.dumps(answer))


@zendesk_app.command("backfill")
def zendesk_backfill(
    since: Annotated[datetime, typer.Option(help="Tickets updated on/after this date (YYYY-MM-DD, UTC).")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only count what would be queued.")] = False,
    limit: Annotated[int | None, typer.Option(help="Scan at most this many tickets.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Queue a scan of every ticket updated since DATE with image attachments that have no
    prediction (Incremental Ticket Export), and re-queue failed ones. Idempotent."""
    import httpx

    from imagematch.sources.zendesk import backfill_zendesk, zendesk_client_for

    settings = _settings()
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    ledger = open_ledger_for(settings)
    http = httpx.Client(timeout=settings.fetch_timeout_seconds)
    try:
        client = zendesk_client_for(settings, http)
        with _progress() as progress:
            task = progress.add_task("scanning tickets", total=limit)
            report = backfill_zendesk(
                client,
                ledger,
                since=since,
                max_bytes=settings.max_image_bytes,
                dry_run=dry_run,
                limit=limit,
                progress=lambda n: progress.advance(task, n),
            )
    except ImageMatchError as exc:
        raise _fail(str(exc)) from exc
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


def main() -> None:
    from imagematch.runtime import tune_allocator

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    tune_allocator()
    app()


if __name__ == "__main__":
    main()
