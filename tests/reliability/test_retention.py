"""Retention that happens (issue #26 item 8): uploaded originals (``blobs/``) of finished jobs are
purged past retention — never those of jobs still to run, nor those a keeper (learned references)
holds; thumbnail and blob purges run on the scheduled maintenance (``serve``'s sweep loop; Modal's
nightly function); a purge while the index cannot be loaded refuses to touch thumbnails."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from imagematch.app import Services
from imagematch.cli import app as cli_app
from imagematch.config import Settings
from imagematch.operations import sweep
from imagematch.retention import purge_stored_photos
from tests.conftest import PALETTE, image_bytes
from tests.reliability.conftest import Outcomes

LATER = datetime.now(UTC) + timedelta(days=120)  # past every retention


def _upload(client: TestClient, colour: str, mark: int) -> int:
    files = {"file": (f"{colour}.png", image_bytes(PALETTE[colour], mark=mark), "image/png")}
    response = client.post("/v1/images", files=files)
    assert response.status_code == 202, response.text
    return int(response.json()["id"])


def _blob_count(services: Services) -> int:
    return sum(1 for p in services.blobs.root.rglob("*") if p.is_file())


def test_finished_uploads_are_purged_and_the_rest_kept(
    client: TestClient, services: Services, outcomes: Outcomes
) -> None:
    done = _upload(client, "red", 5)
    services.make_worker().drain()
    learned = _upload(client, "green", 6)
    services.make_worker().drain()
    waiting = _upload(client, "blue", 7)  # not run yet
    assert _blob_count(services) == 3
    learned_digest = services.ledger.get_job(learned).payload["image"].removeprefix("blob:")  # type: ignore[union-attr]
    services.keep_blobs.append(lambda digest: digest == learned_digest)  # as the learning issue's references

    report = purge_stored_photos(services, now=LATER)
    assert report.blobs_removed == 1 and _blob_count(services) == 2
    assert client.get(f"/v1/jobs/{done}").json()["status"] == "complete"  # its answer stays
    services.make_worker().drain()
    assert services.ledger.get_job(waiting).status == "complete"  # its photo was still there
    outcomes.record(
        "faults",
        "retention: uploads past retention (one finished, one kept as a reference, one pending)",
        f"{report.blobs_removed} original removed; the kept and the pending ones stay",
    )


def test_a_purge_refuses_when_the_index_cannot_be_loaded(
    services: Services, settings: Settings, outcomes: Outcomes
) -> None:
    thumbs = [p for p in services.thumbnails.root.rglob("*.jpg")]
    assert thumbs, "the catalog build wrote thumbnails"
    (settings.data_dir / "index" / "CURRENT").write_text("v999999\n")  # points at nothing
    report = purge_stored_photos(services, now=LATER)
    assert report.thumbnails_removed == 0 and report.thumbnails_refused
    assert all(p.exists() for p in thumbs)
    result = CliRunner().invoke(
        cli_app, ["thumbnails", "purge"], env={"IMAGEMATCH_DATA_DIR": str(settings.data_dir)}
    )
    assert result.exit_code == 1 and all(p.exists() for p in thumbs), result.output
    assert "cannot be loaded" in result.output
    outcomes.record(
        "faults",
        "thumbnail purge while the index cannot be loaded",
        f"refused: {report.thumbnails_refused}"[:160],
    )


def test_the_sweep_loop_runs_the_purges(services: Services, client: TestClient, outcomes: Outcomes) -> None:
    _upload(client, "red", 9)
    services.make_worker().drain()
    assert _blob_count(services) == 1
    services.clock = lambda: LATER  # type: ignore[method-assign]
    sweep(services, purge_due=True)  # what serve's worker pool calls every IMAGEMATCH_SWEEP_SECONDS
    assert _blob_count(services) == 0
    outcomes.record(
        "faults", "retention under serve", "the sweep loop purges originals and thumbnails (hourly)"
    )
