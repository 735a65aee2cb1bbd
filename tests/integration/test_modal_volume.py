"""The deployed app against a Volume stand-in that enforces Modal's rules (``tests/volume_standin``).

Each simulated container mounts the Volume in its own directory; ``.local()`` runs the classes and
functions of ``modal_app`` in it. Each test here failed before the fix it names (issue #30).
"""

from __future__ import annotations

import functools
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from imagematch import deploy, operations
from imagematch.app import Services
from imagematch.config import Settings
from imagematch.deploy import RemoteMatch, VolumeSync
from imagematch.errors import ImageMatchError
from imagematch.index import SnapshotStore
from imagematch.index.publish_lock import PublishBusyError
from imagematch.job_kinds import image_ref_for_blob
from imagematch.models import MatchRequest, MatchResult, NewJob
from index_builder.fanout import ChunksFailedError
from tests.conftest import PALETTE, image_bytes
from tests.volume_standin import MountedVolume, VolumeStandIn

modal = pytest.importorskip("modal")

import modal_app  # noqa: E402  (after the importorskip)

pytestmark = pytest.mark.filterwarnings("ignore:.*will not have access to the mounted Volume")


class Cluster:
    """Simulated containers over one Volume stand-in: ``inside(mount)`` makes ``modal_app`` see
    that container's mount and data dir (enter hooks read them on an instance's first call)."""

    def __init__(self, root: Path, volume: VolumeStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = root
        self.volume = volume
        self.current: MountedVolume | None = None
        self._monkeypatch = monkeypatch
        monkeypatch.setattr(modal_app, "container_volume", lambda: self.current)
        monkeypatch.setattr(modal_app, "read_committed", self.read_committed)

    def container(self, name: str) -> MountedVolume:
        return self.volume.mount(self.root / name, name)

    @contextmanager
    def inside(self, mount: MountedVolume) -> Iterator[MountedVolume]:
        previous = self.current
        self.current = mount
        with self._monkeypatch.context() as patch:
            patch.setenv("IMAGEMATCH_DATA_DIR", str(mount.root))
            yield mount
        self.current = previous

    def read_committed(self, path: Path) -> bytes | None:
        assert self.current is not None
        try:
            return b"".join(self.current.read_file(path.relative_to(self.current.root).as_posix()))
        except FileNotFoundError:
            return None


@pytest.fixture
def cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: Settings, services: Services
) -> Cluster:
    for name in [n for n in os.environ if n.startswith(("MODAL_", "IMAGEMATCH_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("IMAGEMATCH_MODEL", "tiny")
    monkeypatch.setenv("IMAGEMATCH_DATABASE_URL", settings.resolved_database_url())  # outside the Volume
    cluster = Cluster(tmp_path / "containers", VolumeStandIn(), monkeypatch)
    monkeypatch.setattr(modal_app, "map_chunks_on_gpus", lambda _: workers_mapping(cluster, ["gpu"]))
    return cluster


def served(volume: VolumeStandIn) -> str | None:
    pointer = volume.committed.get("index/CURRENT")
    return pointer.decode().strip() if pointer else None


def workers_mapping(cluster: Cluster, names: list[str]) -> Any:
    """Stands in for ``CatalogEmbedder().embed_catalog_chunk.map``: chunks alternate between
    simulated GPU containers; an exception comes back as the chunk's answer."""
    instances = [(modal_app.CatalogEmbedder(), cluster.container(name)) for name in names]

    def map_chunks(chunks: list[Any]) -> list[Any]:
        answers: list[Any] = []
        for n, chunk in enumerate(chunks):
            worker, mount = instances[n % len(instances)]
            with cluster.inside(mount):
                try:
                    answers.append(worker.embed_catalog_chunk.local(chunk.to_json()))
                except Exception as exc:
                    answers.append(exc)
        return answers

    return map_chunks


# ## Builds: no broken index, one writer


def test_a_first_build_fanned_out_to_two_workers_publishes_every_products_images(
    cluster: Cluster, catalog_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Fault: the reindex container reloaded the Volume to read shards while its embedding cache
    # was open; every chunk "failed", and an index of products without images was published.
    monkeypatch.setattr(modal_app, "map_chunks_on_gpus", lambda model: workers_mapping(cluster, ["g1", "g2"]))
    monkeypatch.setattr(modal_app, "BUILD_CHUNK_IMAGES", 3)
    with cluster.inside(cluster.container("reindex")) as builder:
        summary = modal_app.reindex.local(str(catalog_file))
        assert builder.open_files() == []
    assert summary is not None
    assert (summary["embedded"], summary["failed_images"], summary["products_without_images"]) == (8, 0, [])
    reader = cluster.container("reader")  # a container started afterwards sees it all
    index = SnapshotStore(reader.root / "index").load(embedder_id=None)
    assert {pid: len(index.product_vector_ids(pid)) for pid in index.products} == {
        f"P-{name}": 2 for name in PALETTE
    }
    assert not any(event.startswith("refused") for _, event in cluster.volume.events)
    assert not any(name.startswith("build_shards/") for name in cluster.volume.committed)  # cleaned


@pytest.mark.parametrize("model", ["", "tiny"], ids=["rebuild", "switch-model"])
def test_a_build_whose_workers_fail_publishes_nothing(
    cluster: Cluster, catalog_file: Path, monkeypatch: pytest.MonkeyPatch, model: str
) -> None:
    with cluster.inside(cluster.container("first")):
        modal_app.reindex.local(str(catalog_file))  # v000001, embedded in the container
    before = served(cluster.volume)

    def broken(chunks: list[Any]) -> list[Any]:
        return [RuntimeError("container preempted") for _ in chunks]

    monkeypatch.setattr(modal_app, "map_chunks_on_gpus", lambda _: broken)
    for name in [n for n in cluster.volume.committed if n.startswith("embedding_cache")]:
        del cluster.volume.committed[name]  # every image must be embedded again
    with cluster.inside(cluster.container("reindex")), pytest.raises(ChunksFailedError, match="preempted"):
        modal_app.reindex.local(str(catalog_file), model)
    assert served(cluster.volume) == before == "v000001"
    assert "PUBLISHING" not in cluster.volume.committed  # the lock was released and committed


def test_a_second_writer_cannot_move_current(cluster: Cluster, catalog_file: Path) -> None:
    # Fault: `modal run modal_app.py` brought a second Cron reindex; nothing stopped two writers.
    with cluster.inside(cluster.container("first")):
        modal_app.reindex.local(str(catalog_file))
    nightly = cluster.container("nightly")
    SnapshotStore(nightly.root / "index").lock.acquire("nightly", ttl_seconds=3600)
    nightly.commit()  # the nightly build holds the lock, committed
    with cluster.inside(cluster.container("second")), pytest.raises(PublishBusyError, match="nightly"):
        modal_app.reindex.local(str(catalog_file))
    assert served(cluster.volume) == "v000001"
    assert not any(k.startswith("index/v000002") for k in cluster.volume.committed)


def test_reindex_reloads_before_it_opens_the_cache(cluster: Cluster, catalog_file: Path) -> None:
    builder = cluster.container("reindex")  # mounted before the first build committed anything
    with cluster.inside(cluster.container("first")):
        modal_app.reindex.local(str(catalog_file))
    with cluster.inside(builder):
        summary = modal_app.reindex.local(str(catalog_file))
    assert summary is not None and (summary["cached"], summary["embedded"]) == (8, 0)
    assert next(e for n, e in cluster.volume.events if n == "reindex") == "reload"


# ## Workers and web: a failed reload or commit is retried, never a failed job or a 500


def _upload_job(services: Services, key: str) -> int:
    digest = services.blobs.put(image_bytes(PALETTE["red"], mark=len(key)))
    return services.ledger.submit(NewJob(idempotency_key=key, payload={"image": image_ref_for_blob(digest)}))[
        0
    ].id


def test_cpu_worker_batches_run_while_an_upload_holds_a_file_open(
    cluster: Cluster, services: Services
) -> None:
    # Fault: process_jobs reloaded the Volume unguarded; another input's open upload made it raise.
    ids = [
        services.ledger.submit(NewJob(kind="not_registered", idempotency_key=f"k{n}", payload={}))[0].id
        for n in range(8)
    ]
    with cluster.inside(cluster.container("cpu")) as mount:
        cpu = modal_app.CpuWorker()
        assert cpu.process_jobs.local([]) == []  # enter hooks run
        (mount.root / "blobs").mkdir(exist_ok=True)
        upload = (mount.root / "blobs" / "partial.tmp").open("wb")  # another input's upload
        try:
            results: list[Any] = []
            threads = [
                threading.Thread(target=lambda part=part: results.append(cpu.process_jobs.local(part)))
                for part in (ids[:4], ids[4:])
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        finally:
            upload.close()
        assert sorted(s for part in results for s in part) == ["skipped"] * 8
        assert ("cpu", "refused reload") in cluster.volume.events
        assert cpu.process_jobs.local([]) == []  # the next input's reload succeeds
    assert ("cpu", "reload") in cluster.volume.events[-2:]


def test_web_uploads_answer_202_when_the_commit_or_the_dispatch_fails(
    cluster: Cluster, settings: Settings
) -> None:
    mount = cluster.container("web")
    volume = VolumeSync(mount, wait=lambda _: None)
    spawned: list[list[int]] = []

    def route(services: Services) -> Any:
        def dispatch(ids: list[int]) -> None:
            volume.commit()  # as modal_app.route's `before`
            spawned.append(ids)
            raise ConnectionError("spawn failed")  # the job is persisted: the sweep finds it

        return dispatch

    with cluster.inside(mount):
        web = deploy.build_web_app(Settings(), route=route, match=modal_app.match_on_gpu)
        with TestClient(web) as client, (mount.root / "held.tmp").open("wb"):
            answer = client.post(
                "/v1/images", files={"file": ("a.png", image_bytes(PALETTE["blue"]), "image/png")}
            )
        assert answer.status_code == 202, answer.text
        assert spawned == [[answer.json()["id"]]] and volume.unflushed
        assert volume.flush() and not volume.unflushed  # retried once the file is closed


def test_a_failed_remote_match_is_a_503_with_retry_after(settings: Settings, services: Services) -> None:
    def timed_out(data: bytes, request: MatchRequest) -> MatchResult:
        raise TimeoutError("FunctionTimeoutError")

    def not_an_image(data: bytes, request: MatchRequest) -> MatchResult:
        raise ImageMatchError("stays itself")

    with pytest.raises(ImageMatchError, match="stays itself"):
        RemoteMatch(not_an_image)(b"", MatchRequest())
    web = deploy.build_web_app(settings, route=lambda _: lambda ids: None, match=timed_out)
    with TestClient(web) as client:
        answer = client.post("/v1/match", files={"file": ("a.png", image_bytes(PALETTE["red"]), "image/png")})
    assert answer.status_code == 503 and "Retry-After" in answer.headers


# ## Match containers follow CURRENT


def test_a_match_container_picks_up_a_new_snapshot_within_its_reload_interval(
    cluster: Cluster, catalog_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [0.0]
    monkeypatch.setattr(deploy, "VolumeSync", functools.partial(VolumeSync, monotonic=lambda: now[0]))
    with cluster.inside(cluster.container("first")):
        modal_app.reindex.local(str(catalog_file))
    photo = image_bytes(PALETTE["yellow"])
    with cluster.inside(cluster.container("gpu")):
        matcher = modal_app.EmbeddingWorker()
        assert matcher.match.local(photo)["index_version"] == "v000001"
    with cluster.inside(cluster.container("nightly")):
        modal_app.reindex.local(str(catalog_file))  # v000002, committed
    with cluster.inside(cluster.container("gpu")):
        now[0] = 30.0
        assert matcher.match.local(photo)["index_version"] == "v000001"  # within the interval
        now[0] = modal_app.VOLUME_RELOAD_SECONDS + 1.0
        assert matcher.match.local(photo)["index_version"] == "v000002"


# ## Smaller fixes


def test_the_sweep_records_its_run_where_the_console_reads_it(
    cluster: Cluster, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Fault: the sweep function had no Volume; its record never reached the console.
    _upload_job(services, "stale")
    monkeypatch.setattr(modal_app, "route", lambda s, volume=None: lambda ids: None)
    with cluster.inside(cluster.container("sweep")):
        summary = modal_app.sweep.local()
    console = cluster.container("web")  # another container, after its reload
    assert operations.last_sweep(console.root) == json.loads(json.dumps(summary))


def test_move_to_gpu_refuses_a_container_without_cuda() -> None:
    moved: list[str] = []

    class TorchModel:
        def to(self, device: str) -> None:
            moved.append(device)

    deploy.move_to_gpu(TorchModel(), cuda_available=True)
    assert moved == ["cuda"]
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        deploy.move_to_gpu(TorchModel(), cuda_available=False)
    deploy.move_to_gpu(object(), cuda_available=False)  # nothing to move (the tiny embedder)


def test_a_model_switch_fetches_that_models_weights_first(monkeypatch: pytest.MonkeyPatch) -> None:
    import modal_ops

    calls: list[tuple[str, str, dict[str, Any]]] = []

    class Deployed:
        def __init__(self, name: str) -> None:
            self.name = name
            self.object_id = "fc-1"

        def remote(self, *args: Any, **kwargs: Any) -> None:
            calls.append((self.name, "remote", {"args": args, **kwargs}))

        def spawn(self, **kwargs: Any) -> Deployed:
            calls.append((self.name, "spawn", kwargs))
            return self

    monkeypatch.setattr(modal_ops, "deployed", Deployed)
    modal_ops.start_rebuild("cat.json", "open_clip:ViT-L-14/x", dry_run=False)
    assert calls == [
        ("download_weights", "remote", {"args": ("open_clip:ViT-L-14/x",)}),
        ("reindex", "spawn", {"catalog": "cat.json", "model": "open_clip:ViT-L-14/x"}),
    ]
    assert "tiny needs no downloaded weights" in deploy.fetch_weights("tiny", Path("/nonexistent"))
