"""Ledger jobs from the terminal: ``submit``, ``sweep``, ``requeue`` and ``imagematch jobs …``."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from imagematch import operations
from imagematch.cli.terminal import JsonFlag, err, fail, load_settings, out, progress_bar
from imagematch.ledger import open_ledger_for
from imagematch.models import JobStatus, NewJob
from imagematch.operations import RequeueScope, open_services

__all__ = ["app", "requeue", "submit", "sweep"]

app = typer.Typer(help="Inspect and retry jobs in the ledger.", no_args_is_help=True)


def submit(
    images: Annotated[list[Path], typer.Argument(help="Image files to submit.", exists=True, dir_okay=False)],
    source: Annotated[str, typer.Option(help="Recorded source of the jobs.")] = "cli",
    as_json: JsonFlag = False,
) -> None:
    """Persist images and their jobs (processed by `serve` or `worker`); prints the job ids."""
    from imagematch.blobs import BlobStore
    from imagematch.job_kinds import image_ref_for_blob

    settings = load_settings()
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


def sweep(as_json: JsonFlag = False) -> None:
    """Re-queue due retries and jobs whose worker lease expired; report stale pending jobs."""
    with open_services(load_settings(), embedder=False) as services:
        summary = operations.sweep(services, purge_due=True)  # recorded for the console's health page
    err.print(summary.describe())
    if as_json:
        print(json.dumps(summary.as_dict()))


def requeue(
    source: Annotated[str | None, typer.Option(help="Only jobs from this source (api, cli, …).")] = None,
    since: Annotated[
        datetime | None, typer.Option(help="Only jobs created on/after this date (YYYY-MM-DD).")
    ] = None,
    scope: Annotated[
        RequeueScope, typer.Option(help="missing: failed+skipped; failed; all: reprocess everything.")
    ] = RequeueScope.MISSING,
    status: Annotated[RequeueScope | None, typer.Option(hidden=True, help="Old name of --scope.")] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many jobs.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only count what would be queued.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Queue again every job that has no successful prediction (idempotent)."""
    with open_services(load_settings(), embedder=False) as services, progress_bar() as progress:
        task = progress.add_task("dry run" if dry_run else "re-queuing", total=limit)
        summary = operations.requeue(
            services.ledger,
            services.dispatch,
            scope=status or scope,
            source=source,
            since=since,
            limit=limit,
            dry_run=dry_run,
            progress=lambda n: progress.advance(task, n),
        )
    err.print(summary.describe())
    if as_json:
        print(json.dumps(summary.as_dict()))


@app.command("list")
def jobs_list(
    status: Annotated[JobStatus | None, typer.Option(help="Only jobs in this status.")] = None,
    source: Annotated[str | None, typer.Option(help="Only jobs from this source.")] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 20,
    as_json: JsonFlag = False,
) -> None:
    """List jobs, newest first."""
    ledger = open_ledger_for(load_settings())
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


@app.command("retry")
def jobs_retry(
    job_id: Annotated[int | None, typer.Argument(help="The job to run again.")] = None,
    all_failed: Annotated[bool, typer.Option("--all-failed", help="Every failed job.")] = False,
) -> None:
    """Run a job (or every failed job) again."""
    ledger = open_ledger_for(load_settings())
    if all_failed:
        err.print(f"re-queued {ledger.requeue_failed()} failed jobs")
    elif job_id is not None:
        job = ledger.requeue(job_id)
        if job is None:
            raise fail(f"no job {job_id}")
        err.print(f"job {job.id} is {job.status}")
    else:
        raise fail("give a job id or --all-failed")


@app.command("show")
def jobs_show(
    job_id: Annotated[int, typer.Argument(help="The job.")],
    log: Annotated[
        bool,
        typer.Option("--log", help="Also: every attempt the ledger recorded, and where its log lines are."),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Where one job stands; with --log, its attempts and how to find its log lines."""
    ledger = open_ledger_for(load_settings())
    job = ledger.get_job(job_id)
    if job is None:
        raise fail(f"no job {job_id}")
    attempts = ledger.list_attempts(job_id) if log else []
    if as_json:
        body = {"job": job.model_dump(mode="json"), "attempts": [a.model_dump(mode="json") for a in attempts]}
        print(json.dumps(body))
        return
    out.print(
        f"job {job.id}: {job.status} · {job.kind} from {job.source} · attempts {job.attempts} · "
        f"request {job.request_id or '—'}"
    )
    if job.last_error:
        out.print(f"last error ({job.error_kind}): {job.last_error}")
    if not log:
        return
    table = Table(title="attempts (from the ledger)")
    for column in ("#", "worker", "outcome", "finished", "error"):
        table.add_column(column)
    for a in attempts:
        outcome = f"{a.outcome} ({a.error_kind})" if a.error_kind else str(a.outcome)
        table.add_row(
            str(a.attempt), a.worker_id or "", outcome, f"{a.finished_at:%Y-%m-%d %H:%M:%S}", a.error or ""
        )
    out.print(table)
    out.print(_where_the_lines_are(job.id, job.request_id))


def _where_the_lines_are(job_id: int, request_id: str | None) -> str:
    """How to find a job's log lines: every line of a job carries its job_id; every line of the
    request that caused it (and of the jobs that followed) carries its request_id."""
    by_request = f' or .request_id == "{request_id}"' if request_id else ""
    search = request_id or f'"job_id": {job_id}'
    return (
        f"Log lines: JSON logs (IMAGEMATCH_LOG_FORMAT=json) carry job_id={job_id}"
        + (f" and request_id={request_id}" if request_id else "")
        + ".\n"
        + f"  local:  jq -c 'select(.job_id == {job_id}{by_request})' <the serve/worker log file>\n"
        + f"  Modal:  modal app logs imagematch --search '{search}'"
    )
