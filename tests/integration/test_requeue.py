"""`imagematch requeue` (`imagematch.operations.requeue`) re-queues what has no successful prediction,
idempotently; `all` reprocesses."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from imagematch.app import Services
from imagematch.cli import app
from imagematch.job_kinds import image_ref_for_blob
from imagematch.models import JobStatus, NewJob
from imagematch.operations import RequeueScope, find_jobs_to_requeue, requeue
from tests.conftest import PALETTE, image_bytes


def _no_dispatch(job_ids: list[int]) -> None:
    pass


def _submit(services: Services, data: bytes, key: str, source: str = "api") -> int:
    ref = image_ref_for_blob(services.blobs.put(data))
    return services.ledger.submit(NewJob(idempotency_key=key, source=source, payload={"image": ref}))[0].id


@pytest.fixture
def mixed(services: Services) -> dict[str, int]:
    """One complete job, one failed (not an image), one skipped (image deleted)."""
    ids = {
        "complete": _submit(services, image_bytes(PALETTE["red"]), "a"),
        "failed": _submit(services, b"not an image", "b", source="zendesk"),
    }
    services.make_worker().drain()
    ids["skipped"] = services.ledger.submit(
        NewJob(idempotency_key="c", payload={"image": image_ref_for_blob("0" * 64)})
    )[0].id
    services.make_worker().drain()
    return ids


def test_missing_scope_requeues_failed_and_skipped(services: Services, mixed: dict[str, int]) -> None:
    dry = requeue(services.ledger, _no_dispatch, scope=RequeueScope.MISSING, dry_run=True)
    assert dry.matched == 2 and dry.requeued == 0
    assert services.ledger.count_by_status()[JobStatus.PENDING] == 0  # a dry run changes nothing
    report = requeue(services.ledger, _no_dispatch, scope=RequeueScope.MISSING, dry_run=False)
    assert sorted(report.job_ids) == sorted([mixed["failed"], mixed["skipped"]])
    again = requeue(services.ledger, _no_dispatch, scope=RequeueScope.MISSING, dry_run=False)
    assert again.matched == 0  # idempotent: they are pending now


def test_source_filter_and_limit(services: Services, mixed: dict[str, int]) -> None:
    jobs = list(find_jobs_to_requeue(services.ledger, scope=RequeueScope.FAILED, source="zendesk"))
    assert [j.id for j in jobs] == [mixed["failed"]]
    assert len(list(find_jobs_to_requeue(services.ledger, scope=RequeueScope.ALL, limit=1))) == 1


def test_all_scope_reprocesses_and_replaces_the_answer(services: Services, mixed: dict[str, int]) -> None:
    before = services.ledger.get_prediction(mixed["complete"])
    requeue(services.ledger, _no_dispatch, scope=RequeueScope.ALL, dry_run=False)
    services.make_worker().drain()
    after = services.ledger.get_prediction(mixed["complete"])
    assert before and after and after.id == before.id and after.created_at >= before.created_at
    assert len(services.ledger.list_predictions()) == 1


@pytest.mark.parametrize(("command", "scope"), [("requeue", "--scope"), ("backfill", "--status")])
def test_requeue_command_and_its_old_spelling(
    services: Services,
    mixed: dict[str, int],
    monkeypatch: pytest.MonkeyPatch,
    command: str,
    scope: str,
) -> None:
    monkeypatch.setenv("IMAGEMATCH_DATA_DIR", str(services.settings.data_dir))
    runner = CliRunner()
    dry = runner.invoke(app, [command, scope, "failed", "--since", "2000-01-01", "--dry-run", "--json"])
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout.strip().splitlines()[-1]) == {
        "dry_run": True,
        "matched": 1,
        "by_status": {"failed": 1},
        "requeued": 0,
        "dispatched": 0,
    }
    real = runner.invoke(app, [command, "--json"])
    assert json.loads(real.stdout.strip().splitlines()[-1])["requeued"] == 2
    future = runner.invoke(app, [command, scope, "all", "--since", "2999-01-01", "--json"])
    assert json.loads(future.stdout.strip().splitlines()[-1])["matched"] == 0


def test_old_spellings_are_hidden_from_help() -> None:
    shown = CliRunner().invoke(app, ["--help"]).stdout
    assert "requeue" in shown and "backfill" not in shown
    zendesk = CliRunner().invoke(app, ["zendesk", "--help"]).stdout
    assert "scan" in zendesk and "backfill" not in zendesk
