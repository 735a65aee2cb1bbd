"""``imagematch jobs show ID --log``: what the ledger knows of a job's attempts, and where its log
lines are (its job_id and the request_id stored with it)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from imagematch.cli import app as cli_app
from imagematch.ledger import open_ledger
from imagematch.log_context import bound
from imagematch.models import ErrorKind, NewJob


@pytest.fixture
def ledger_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("IMAGEMATCH_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("IMAGEMATCH_LOG_FORMAT", "text")
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    yield tmp_path
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved:
        root.addHandler(handler)
    root.setLevel(level)


def test_jobs_show_log_lists_attempts_and_where_the_lines_are(ledger_dir: Path) -> None:
    ledger = open_ledger(f"sqlite:///{ledger_dir / 'imagematch.sqlite3'}")
    with bound(request_id="req-7f3a"):
        job, _ = ledger.submit(NewJob(idempotency_key="k", payload={"image": "blob:x"}))
    ledger.claim("host:1:w", limit=1, lease_seconds=60)
    ledger.fail(job.id, "host:1:w", error_kind=ErrorKind.PERMANENT, error="not an image", retry_at=None)
    ledger.close()

    result = CliRunner().invoke(cli_app, ["jobs", "show", str(job.id), "--log"])
    assert result.exit_code == 0, result.output
    assert f"job {job.id}: failed" in result.output and "request req-7f3a" in result.output
    assert "host:1:w" in result.output and "not an image" in result.output
    assert f'select(.job_id == {job.id} or .request_id == "req-7f3a")' in result.output
    assert "modal app logs imagematch --search 'req-7f3a'" in result.output

    as_json = CliRunner().invoke(cli_app, ["jobs", "show", str(job.id), "--log", "--json"])
    body = json.loads(as_json.output.splitlines()[-1])
    assert body["job"]["request_id"] == "req-7f3a" and body["attempts"][0]["outcome"] == "failed"
    missing = CliRunner().invoke(cli_app, ["jobs", "show", "999"])
    assert missing.exit_code == 1
