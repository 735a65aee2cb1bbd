"""The Modal wiring, offline: no token, no network, no GPU.

Configuration is read back from the Modal objects (``Function.info()``); the classes' enter hooks
and methods run in-process through Modal's own ``.local()``; the deployed API
(``imagematch.deploy``) runs under a TestClient with dispatch going straight to
``EmbeddingWorker.process_jobs`` instead of a spawn. The Volume's rules are held by
``test_modal_volume.py``.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from imagematch import deploy
from imagematch.app import Services
from imagematch.config import Settings
from imagematch.deploy import VolumeSync
from imagematch.dispatch import RoutedDispatch
from imagematch.images import decode_image
from imagematch.job_kinds import image_ref_for_blob
from imagematch.models import ErrorKind, Job, MatchResult, NewJob
from tests.conftest import PALETTE, REPO, image_bytes

modal = pytest.importorskip("modal")

import modal_app  # noqa: E402  (after the importorskip)
import modal_ops  # noqa: E402

# `.local()` warns that a function with Volumes runs without them: that is the point here.
pytestmark = pytest.mark.filterwarnings("ignore:.*will not have access to the mounted Volume")


@pytest.fixture(autouse=True)
def no_modal_token_or_stray_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("MODAL_", "IMAGEMATCH_")):
            monkeypatch.delenv(name)


@pytest.fixture
def modal_env(monkeypatch: pytest.MonkeyPatch, settings: Settings, services: Services) -> Settings:
    """The environment a Modal container would get, pointed at the fixture's data dir and ledger
    (the index is built there by the ``services`` fixture)."""
    monkeypatch.setenv("IMAGEMATCH_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("IMAGEMATCH_MODEL", "tiny")
    monkeypatch.setenv("IMAGEMATCH_DATABASE_URL", settings.resolved_database_url())
    return Settings()


@pytest.fixture
def matcher(modal_env: Settings) -> Iterator[Any]:
    """One ``EmbeddingWorker`` instance: its enter hooks run once, on the first ``.local()`` call."""
    instance = modal_app.EmbeddingWorker()
    yield instance
    entered = getattr(instance, "services", None)  # set by the enter hooks, if they ran
    if entered is not None:
        entered.close()


def png(colour: str, mark: int = 1) -> bytes:
    return image_bytes(PALETTE[colour], mark=mark)


def decode(data: bytes) -> Image.Image:
    return decode_image(data, max_bytes=10**7, max_pixels=10**7)


def blob_job(services: Services, key: str, colour: str, mark: int = 1) -> Job:
    """A persisted upload job, as ``POST /v1/images`` creates it."""
    digest = services.blobs.put(png(colour, mark))
    job, _ = services.ledger.submit(
        NewJob(idempotency_key=key, payload={"image": image_ref_for_blob(digest)})
    )
    return job


# ## Importing and configuration


def test_import_needs_no_token_network_or_settings(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODAL_", "IMAGEMATCH_"))}
    env["HOME"] = str(tmp_path)  # no ~/.modal.toml either
    env["IMAGEMATCH_TOP_K"] = "not a number"  # proves no Settings() runs at import
    done = subprocess.run(
        [sys.executable, "-c", "import modal_app; print(modal_app.app.name)"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "imagematch"


def _definition_args(function: Any) -> dict[str, Any]:
    # Private, kept to this one helper: Modal has no public attribute for a function's memory
    # snapshot flag, scale-down window or container cap before deployment; they are arguments of
    # the definition's loader. If a Modal upgrade breaks this, read them from `modal app` instead.
    from modal._utils.async_utils import synchronizer

    return inspect.getclosurevars(synchronizer._translate_in(function)._load).nonlocals


def test_gpu_classes_configuration() -> None:
    matcher = modal_app.EmbeddingWorker().match.info()
    embedder = modal_app.ImageEmbedder().embed.info()
    builder = modal_app.CatalogEmbedder().embed_catalog_chunk.info()
    for info in (matcher, embedder, builder):
        assert info.gpus == [("L4", 1)]
        assert set(info.volumes) == {"/data"}
        assert info.volumes["/data"].name == "imagematch-data"
        assert info.secrets == ["modal.Secret.from_name('imagematch')"]
    assert sorted(matcher.method_names or []) == ["match", "process_jobs"]
    assert matcher.timeout == 10 * 60
    assert embedder.batching_info is not None
    assert (embedder.batching_info.max_batch_size, embedder.batching_info.wait_ms) == (32, 50)
    caps = {modal_app.EmbeddingWorker: 10, modal_app.ImageEmbedder: 10, modal_app.CatalogEmbedder: 6}
    for cls, cap in caps.items():  # a build has its own cap: it never takes the match GPUs
        args = _definition_args(cls._get_class_service_function())
        assert args["enable_memory_snapshot"] is True
        assert args["autoscaler_settings"].scaledown_window == 5 * 60
        assert args["autoscaler_settings"].max_containers == cap
    cpu = modal_app.CpuWorker().process_jobs.info()  # the kinds that need no model: no GPU
    assert cpu.gpus == [] and cpu.secrets == ["modal.Secret.from_name('imagematch')"]


def test_memory_snapshot_hooks_need_the_flag() -> None:
    # Modal refuses `@modal.enter(snap=True)` on a class without enable_memory_snapshot=True, so
    # importing modal_app at all proves both GPU classes restore their weights from a snapshot.
    with pytest.raises(modal.exception.InvalidError, match="enable_memory_snapshot"):
        modal.App("probe").cls()(type("Probe", (modal_app.ModelOnGpu,), {}))


def test_web_schedules_and_weights_configuration() -> None:
    web = modal_app.web.info()
    assert web.web_info is not None and web.web_info.unauthenticated is False  # Modal proxy auth
    assert web.concurrency_info is not None and web.concurrency_info.max_inputs == 32
    assert set(web.volumes) == {"/data"} and web.gpus == []
    assert web.secrets == ["modal.Secret.from_name('imagematch')"]

    sweep = modal_app.sweep.info()
    assert sweep.schedule == "Cron('*/5 * * * *', UTC)"
    assert set(sweep.volumes) == {"/data"} and sweep.gpus == []  # records its run for the console
    for function in (modal_app.web, modal_app.sweep):  # imports restored from a snapshot
        assert _definition_args(function)["enable_memory_snapshot"] is True
    assert _definition_args(modal_app.web)["autoscaler_settings"].scaledown_window == 5 * 60

    reindex = modal_app.reindex.info()
    assert reindex.schedule == "Cron('0 3 * * *', UTC)"
    assert reindex.gpus == [] and set(reindex.volumes) == {"/data"}  # embedding fans out to the GPUs
    assert _definition_args(modal_app.reindex)["max_containers"] == 1  # one snapshot writer

    weights = modal_app.download_weights.info()
    assert set(weights.volumes) == {"/data"} and weights.schedule is None


def test_image_installs_the_one_lock_file() -> None:
    assert modal_app.REQUIREMENTS == REPO / "requirements.lock"
    assert modal_app.MODEL == "open_clip:ViT-B-16/datacomp_xl_s13b_b90k"
    assert modal_ops.APP_NAME == modal_app.APP_NAME and modal_ops.app.name != modal_app.APP_NAME


def test_operator_entrypoints_bring_no_second_schedule() -> None:
    # `modal run modal_ops.py` starts a temporary copy of modal_ops.app: it must define nothing
    # that runs on its own (a second nightly reindex would be a second writer of CURRENT).
    defined = [v for v in vars(modal_ops).values() if isinstance(v, modal.Function | modal.Cls)]
    assert defined == []
    assert not hasattr(modal_app, "main")  # no local entrypoint in the deployed app


def test_local_sources_ship_the_ledger_sql() -> None:
    # add_local_python_source takes only .py files by default; the ledger needs its .sql files.
    ignored = modal.FilePatternMatcher(*modal_app.SOURCE_IGNORE)
    package_data = [p.relative_to(REPO) for p in (REPO / "imagematch").rglob("*.sql")]
    assert package_data
    assert not any(ignored(path) for path in package_data)
    assert ignored(Path("imagematch/__pycache__/app.cpython-311.pyc"))


@pytest.mark.parametrize(
    ("overrides", "ok"),
    [
        ({}, False),  # the default: SQLite in the data dir
        ({"database_url": "sqlite:////data/ledger.sqlite3"}, False),
        ({"database_url": "memory://"}, False),
        ({"database_url": "postgresql://user@db.example/imagematch"}, True),
        ({"supabase_url": "https://abc.supabase.co", "supabase_service_key": "k"}, True),
    ],
)
def test_modal_refuses_a_ledger_containers_cannot_share(
    tmp_path: Path, overrides: dict[str, Any], ok: bool
) -> None:
    settings = Settings(data_dir=tmp_path, **overrides)
    if ok:
        deploy.require_shared_ledger(settings)
    else:
        with pytest.raises(RuntimeError, match="IMAGEMATCH_DATABASE_URL"):
            deploy.require_shared_ledger(settings)


# ## The GPU classes, run in-process with `.local()`


def test_match_on_the_class_equals_the_local_matcher(matcher: Any, services: Services) -> None:
    photo = png("yellow")
    on_modal = matcher.match.local(photo)
    local = services.matcher.match_image(decode(photo))
    assert on_modal["matches"][0]["product_id"] == "P-yellow"
    assert on_modal["matches"] == local.model_dump(mode="json")["matches"]
    assert on_modal["index_version"] == "v000001"
    assert len(matcher.match.local(photo, {"top_k": 2})["matches"]) == 2


def test_batched_embed_returns_one_vector_per_image(modal_env: Settings, services: Services) -> None:
    # `.local()` on a batched method takes the whole batch, as the container would receive it.
    images = [png("red"), b"not an image", png("blue")]
    vectors = modal_app.ImageEmbedder().embed.local(images)
    expected = services.embedder.embed([decode(images[0]), decode(images[2])])
    assert len(vectors) == 3 and vectors[1] == []
    assert vectors[0] == pytest.approx(expected[0].tolist())
    assert vectors[2] == pytest.approx(expected[1].tolist())


def test_local_worker_and_modal_class_give_the_same_prediction(matcher: Any, services: Services) -> None:
    first = blob_job(services, "local", "green", mark=3)
    assert services.make_worker().drain() == 1
    second = blob_job(services, "modal", "green", mark=3)  # the same image, a second job

    assert matcher.process_jobs.local([second.id]) == ["complete"]
    assert matcher.process_jobs.local([second.id, first.id]) == [None, None]  # done: not claimable

    local, on_modal = services.ledger.get_prediction(first.id), services.ledger.get_prediction(second.id)
    assert local is not None and on_modal is not None
    assert local.matches[0].product_id == "P-green"
    assert on_modal.matches == local.matches
    assert (on_modal.embedder_id, on_modal.index_version) == (local.embedder_id, local.index_version)


def test_process_jobs_serves_a_snapshot_published_after_start(
    matcher: Any, services: Services, catalog_file: Path
) -> None:
    first = blob_job(services, "a", "red")
    assert matcher.process_jobs.local([first.id]) == ["complete"]

    catalog = json.loads(catalog_file.read_text())
    catalog.append({"id": "P-new", "name": "New", "category": "colour", "images": catalog[0]["images"][:1]})
    catalog_file.write_text(json.dumps(catalog))
    summary = modal_app.reindex.local(str(catalog_file))
    assert summary is not None
    assert (summary["version"], summary["products"], summary["embedded"]) == ("v000002", 5, 0)

    second = blob_job(services, "b", "blue")
    assert matcher.process_jobs.local([second.id]) == ["complete"]
    prediction = services.ledger.get_prediction(second.id)
    assert prediction is not None and prediction.index_version == "v000002"


# ## The deployed API, sweep and reindex


def test_submit_dispatches_to_the_gpu_class_and_the_job_completes(matcher: Any, modal_env: Settings) -> None:
    dispatched: list[list[int]] = []

    def dispatch(job_ids: list[int]) -> None:  # stands in for the routed spawns, in-process
        dispatched.append(job_ids)
        assert matcher.process_jobs.local(job_ids) == ["complete"] * len(job_ids)

    web = deploy.build_web_app(modal_env, route=lambda _: dispatch, match=modal_app.match_on_gpu)
    with TestClient(web) as client:
        files = {"file": ("photo.png", png("blue", mark=2), "image/png")}
        created = client.post("/v1/images", files=files)
        assert created.status_code == 202, created.text
        job = client.get(f"/v1/jobs/{created.json()['id']}").json()
        again = client.post("/v1/images", files=files)  # same image: the existing job, no dispatch

    assert dispatched == [[job["id"]]]
    assert job["status"] == "complete"
    assert job["prediction"]["matches"][0]["product_id"] == "P-blue"
    assert again.status_code == 200 and again.json()["id"] == job["id"]


def test_web_container_loads_no_model_and_match_is_answered_by_the_gpu_class(
    matcher: Any, modal_env: Settings
) -> None:
    asked: list[dict[str, Any]] = []

    def on_gpu(data: bytes, request: Any) -> Any:  # stands in for match_on_gpu: the same method
        asked.append(request.model_dump())
        return MatchResult.model_validate(matcher.match.local(data, request.model_dump()))

    web = deploy.build_web_app(modal_env, route=lambda _: lambda ids: None, match=on_gpu)
    with TestClient(web) as client:
        files = {"file": ("photo.png", png("yellow"), "image/png")}
        answer = client.post("/v1/match", files=files, params={"top_k": 2, "category": "colour"})
        stats = client.get("/v1/stats").json()
    assert answer.status_code == 200, answer.text
    assert answer.json()["matches"][0]["product_id"] == "P-yellow" and len(answer.json()["matches"]) == 2
    assert asked[0]["top_k"] == 2 and asked[0]["category"] == "colour"
    assert "not loaded" in stats["embedder"] and stats["index"]["version"] == "v000001"


def test_sweep_dispatches_stale_pending_jobs(
    matcher: Any, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = blob_job(services, "missed", "red")
    monkeypatch.setenv("IMAGEMATCH_PENDING_GRACE_SECONDS", "0")  # its nudge was lost long ago
    results: list[list[str | None]] = []

    summary = deploy.sweep_and_record(
        Settings(), VolumeSync(None), lambda _: lambda ids: results.append(matcher.process_jobs.local(ids))
    )

    assert {k: v for k, v in summary.items() if k != "at"} == {
        "retries_due": 0,
        "leases_expired": 0,
        "gave_up": 0,
        "stale_pending": 1,
    }
    assert results == [["complete"]]
    assert services.ledger.get_job(job.id).status == "complete"  # type: ignore[union-attr]


def test_reindex_fans_embedding_out_to_the_gpu_class_through_shards(
    matcher: Any, modal_env: Settings, catalog_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    builder = modal_app.CatalogEmbedder()

    def map_chunks_locally(chunks: list[Any]) -> list[Any]:  # stands in for map_chunks_on_gpus
        return [builder.embed_catalog_chunk.local(chunk.to_json()) for chunk in chunks]

    monkeypatch.setenv("IMAGEMATCH_DATA_DIR", str(modal_env.data_dir / "fresh"))  # nothing cached
    monkeypatch.setattr(modal_app, "map_chunks_on_gpus", lambda model: map_chunks_locally)
    summary = modal_app.reindex.local(str(catalog_file))
    assert summary is not None
    assert (summary["products"], summary["embedded"], summary["failed_images"]) == (4, 8, 0)
    assert list((modal_env.data_dir / "fresh" / "build_shards").rglob("*.npz")) == []  # folded, removed


def test_reindex_without_a_catalog_skips(modal_env: Settings, caplog: pytest.LogCaptureFixture) -> None:
    assert modal_app.reindex.local() is None
    assert "IMAGEMATCH_CATALOG is not set" in caplog.text


def test_reindex_from_the_configured_source(
    modal_env: Settings, catalog_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMAGEMATCH_CATALOG", str(catalog_file))
    summary = modal_app.reindex.local()
    assert summary is not None and summary["version"] == "v000002" and summary["cached"] == 8


def test_download_weights_has_nothing_to_do_for_local_models(
    modal_env: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    modal_app.download_weights.local()
    assert "needs no downloaded weights" in capsys.readouterr().out


def test_requeue_requeues_and_dispatches_jobs_without_an_answer(matcher: Any, services: Services) -> None:
    failed = blob_job(services, "failed-once", "yellow")
    claimed = services.ledger.claim_job(failed.id, "old-worker", lease_seconds=60)
    assert claimed is not None
    services.ledger.fail(
        failed.id, "old-worker", error_kind=ErrorKind.PERMANENT, error="model outage", retry_at=None
    )
    untouched = blob_job(services, "still-pending", "red")
    results: list[list[str | None]] = []

    def dispatch(ids: list[int]) -> None:
        results.append(matcher.process_jobs.local(ids))

    dry = deploy.requeue_and_dispatch(Settings(), lambda _: dispatch, since="2020-01-01", dry_run=True)
    assert (dry["matched"], dry["requeued"], dry["dispatched"], results) == (1, 0, 0, [])
    assert "would re-queue" in modal_ops.describe_requeue(dry)

    done = deploy.requeue_and_dispatch(Settings(), lambda _: dispatch, scope="failed")
    assert done == {
        "dry_run": False,
        "matched": 1,
        "by_status": {"failed": 1},
        "requeued": 1,
        "dispatched": 1,
    }
    assert results == [["complete"]]
    assert services.ledger.get_job(failed.id).status == "complete"  # type: ignore[union-attr]
    assert services.ledger.get_job(untouched.id).status == "pending"  # type: ignore[union-attr]
    assert "re-queued 1, dispatched 1" in modal_ops.describe_requeue(done)


def test_requeue_function_dry_run_runs_offline(modal_env: Settings) -> None:
    summary = modal_app.requeue.local(dry_run=True)  # nothing to dispatch: no Modal call
    assert summary["matched"] == 0 and summary["dispatched"] == 0


def test_entrypoint_options_and_dry_run(capsys: pytest.CaptureFixture[str]) -> None:
    # `modal run` builds its CLI options from the evaluated type hints.
    hints = typing.get_type_hints(modal_ops.main.info.raw_f)
    assert hints == {
        "rebuild": bool,
        "catalog": str,
        "switch_model": str,
        "scope": str,
        "status": str,
        "source": str,
        "since": str,
        "limit": int,
        "dry_run": bool,
        "return": type(None),
    }
    modal_ops.main(rebuild=True, catalog="https://example.com/catalog.json", dry_run=True)
    assert "would rebuild the index from https://example.com/catalog.json" in capsys.readouterr().out
    modal_ops.main(rebuild=True, switch_model="open_clip:ViT-L-14/x", dry_run=True)
    assert "would rebuild a open_clip:ViT-L-14/x candidate" in capsys.readouterr().out


# ## Zendesk webhooks


def test_webhooks_endpoint_is_public_cpu_only_and_snapshotted() -> None:
    info = modal_app.webhooks.info()
    # Zendesk cannot send Modal's proxy-auth headers: every route of this app verifies a signature.
    assert info.web_info is not None and info.web_info.unauthenticated is True
    assert info.gpus == [] and info.volumes == {}  # no model, no index: it only persists jobs
    assert info.secrets == ["modal.Secret.from_name('imagematch')"]
    assert info.concurrency_info is not None and info.concurrency_info.max_inputs == 32
    assert _definition_args(modal_app.webhooks)["enable_memory_snapshot"] is True


def test_zendesk_webhook_to_internal_note_routed_by_what_each_kind_needs(
    matcher: Any, modal_env: Settings, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime

    from imagematch.sources.zendesk import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
    from tests.fake_zendesk import fake_zendesk

    with fake_zendesk() as zendesk:
        for name, value in {
            "IMAGEMATCH_ZENDESK_BASE_URL": zendesk.base_url,
            "IMAGEMATCH_ZENDESK_EMAIL": zendesk.email,
            "IMAGEMATCH_ZENDESK_API_TOKEN": zendesk.api_token,
            "IMAGEMATCH_ZENDESK_WEBHOOK_SECRET": "whsec",
            "IMAGEMATCH_ZENDESK_POST_NOTES": "true",
            "IMAGEMATCH_FETCH_ALLOW_PRIVATE": "true",  # the fake Zendesk is on 127.0.0.1
        }.items():
            monkeypatch.setenv(name, value)
        queue: list[tuple[list[int], bool]] = []  # stands in for the spawns of every container

        def route(services: Services, volume: object = None) -> RoutedDispatch:
            return RoutedDispatch(
                services.ledger,
                services.kinds,
                to_embedder=lambda ids: queue.append((ids, True)),
                to_cpu=lambda ids: queue.append((ids, False)),
            )

        monkeypatch.setattr(modal_app, "route", route)
        zendesk.add_comment(7, zendesk.attachment(png("yellow", mark=2), "photo.png"))
        body = json.dumps({"ticket_id": 7}).encode()
        timestamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

        with TestClient(deploy.build_webhook_app(Settings(), route=modal_app.route)) as client:
            assert client.get("/healthz").status_code == 200
            assert client.get("/v1/jobs").status_code == 404  # only the webhook routes are public
            json_type = {"Content-Type": "application/json"}
            assert client.post("/webhooks/zendesk", content=body, headers=json_type).status_code == 401
            headers = {
                SIGNATURE_HEADER: sign("whsec", timestamp, body),
                TIMESTAMP_HEADER: timestamp,
                **json_type,
            }
            accepted = client.post("/webhooks/zendesk", content=body, headers=headers)
        assert accepted.status_code == 202, accepted.text

        cpu = modal_app.CpuWorker()
        statuses: list[str | None] = []
        routes: list[bool] = []
        while queue:  # ticket scan → attachment → note, each dispatched by the job before it
            ids, needs_embedder = queue.pop(0)
            routes.append(needs_embedder)
            statuses += (matcher if needs_embedder else cpu).process_jobs.local(ids)
        assert routes == [False, True, False]  # only the attachment went to the GPU class
        assert statuses == ["complete", "complete", "complete"]
        [prediction] = services.ledger.list_predictions(ticket_id="7")
        assert prediction.best_product_id == "P-yellow" and prediction.source == "zendesk"
        assert len(zendesk.notes(7)) == 1
