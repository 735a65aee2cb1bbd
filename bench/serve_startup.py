"""Cold start and memory of ``imagematch serve`` with a large catalog snapshot on disk.

Usage: ``python bench/serve_startup.py [--products 10000] [--rss-vectors 100000] [--no-write]``.

1. **Cold start**: a synthetic snapshot of ``--products`` products (4 images each, vectors of the
   default model's dimension, index types chosen as a build would) is published into a data dir;
   then ``imagematch serve`` starts and a query photo is POSTed to ``/v1/match`` until it answers.
   Process start → first answer is split, in a fresh process, into imports, model load and index
   load (``SnapshotStore.load``). Goal: index load < 1 s, and nothing rebuilt (the snapshot's
   version and files are unchanged afterwards).
2. **Peak RSS** (VmHWM) of ``serve`` after answering a few matches with a ``--rss-vectors``-vector
   snapshot. Goal < 1.5 GB.

Writes the ``startup`` section of BENCHMARKS.md. Bounded waits; 127.0.0.1 only; asserts nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

from ann_recall import clustered_catalog
from machine import machine_line
from markdown_sections import replace_section

from imagematch.index import ProductIndex, SnapshotStore
from imagematch.models import CatalogViews, Product, ProductScoring

REPO = Path(__file__).resolve().parents[1]
QUERY = REPO / "examples" / "grocery" / "queries" / "q-00000.jpg"
IMAGES_PER_PRODUCT = 4
DIM = 1792
PHASES = """
import json, sys, time
from pathlib import Path
t0 = time.perf_counter()
import imagematch.api, imagematch.app, imagematch.cli, imagematch.embedder, imagematch.index
t1 = time.perf_counter()
from imagematch.config import Settings
from imagematch.embedder import load_embedder
settings = Settings()
embedder = load_embedder(settings.model, device=settings.device, batch_size=settings.batch_size)
t2 = time.perf_counter()
index = imagematch.index.SnapshotStore(settings.data_dir / "index").load(embedder_id=embedder.embedder_id)
t3 = time.perf_counter()
print(json.dumps({"imports": t1 - t0, "model": t2 - t1, "index": t3 - t2, "vectors": index.vector_count}))
"""


def embedder_id() -> str:
    from imagematch.config import Settings
    from imagematch.embedder import load_embedder

    settings = Settings()
    return load_embedder(settings.model, device="cpu").embedder_id


def publish_snapshot(data_dir: Path, products: int, dim: int, eid: str) -> tuple[str, float]:
    """A synthetic snapshot of ``products`` products; returns its version and build seconds."""
    started = time.perf_counter()
    vectors, _ = clustered_catalog(products * IMAGES_PER_PRODUCT, dim, 1, seed=products)
    index = ProductIndex(eid, dim, scoring=ProductScoring.CENTROID, catalog_views=CatalogViews.MULTI)
    for p in range(products):
        pid = f"P{p:07d}"
        rows = vectors[p * IMAGES_PER_PRODUCT : (p + 1) * IMAGES_PER_PRODUCT]
        images = [
            (f"https://example.test/{pid}/{i}.jpg", hashlib.sha256(f"{pid}{i}".encode()).hexdigest())
            for i in range(len(rows))
        ]
        index.upsert_product(Product(id=pid, name=f"Product {p}", category=f"C{p % 100}"), images, rows)
    del vectors
    index.size_vector_indexes()
    version = SnapshotStore(data_dir / "index").publish(index)
    return version, time.perf_counter() - started


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def post_match(port: int) -> int:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="q.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + QUERY.read_bytes()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/match",
        data=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return int(response.status)


def env_for(data_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "IMAGEMATCH_DATA_DIR": str(data_dir),
        "PYTHONPATH": str(REPO),
        "HF_HUB_OFFLINE": "1",
    }


def serve_until_answered(data_dir: Path, matches: int = 1) -> tuple[float, int]:
    """Seconds from process start to the first answered match, and peak RSS bytes after ``matches``."""
    port = free_port()
    cmd = [sys.executable, "-m", "imagematch.cli", "serve", "--port", str(port), "--workers", "0"]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env_for(data_dir), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        first = None
        deadline = started + 300
        while first is None and time.perf_counter() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"serve exited {proc.returncode}")
            try:
                if post_match(port) == 200:
                    first = time.perf_counter() - started
            except OSError:
                time.sleep(0.05)
        if first is None:
            raise RuntimeError("no answer within 300 s")
        for _ in range(matches - 1):
            post_match(port)
        status = Path(f"/proc/{proc.pid}/status").read_text()
        hwm_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
        return first, hwm_kb * 1024
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def snapshot_files(data_dir: Path) -> dict[str, float]:
    root = data_dir / "index"
    return {str(p.relative_to(root)): p.stat().st_mtime for p in root.rglob("*") if p.is_file()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    quick = os.environ.get("BENCH_QUICK") == "1"
    parser.add_argument("--products", type=int, default=1000 if quick else 10_000)
    parser.add_argument("--rss-vectors", type=int, default=10_000 if quick else 100_000)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    eid = embedder_id()
    with tempfile.TemporaryDirectory(prefix="startup-") as tmp:
        cold_dir, rss_dir = Path(tmp) / "cold", Path(tmp) / "rss"
        version, cold_build_s = publish_snapshot(cold_dir, args.products, DIM, eid)
        before = snapshot_files(cold_dir)
        phases_out = subprocess.run(
            [sys.executable, "-c", PHASES], env=env_for(cold_dir), capture_output=True, text=True, timeout=300
        )
        phases = json.loads(phases_out.stdout.strip().splitlines()[-1])
        first_s, _ = serve_until_answered(cold_dir)
        rebuilt = (
            snapshot_files(cold_dir) != before
            or SnapshotStore(cold_dir / "index").current_version() != version
        )
        print(f"cold start {first_s:.2f} s, phases {phases}, rebuilt {rebuilt}", flush=True)
        _, rss_build_s = publish_snapshot(rss_dir, args.rss_vectors // IMAGES_PER_PRODUCT, DIM, eid)
        _, peak = serve_until_answered(rss_dir, matches=20)
        print(f"peak RSS {peak / 2**30:.2f} GiB with {args.rss_vectors} vectors", flush=True)
    if not args.no_write:
        path = REPO / "BENCHMARKS.md"
        body = markdown(args, first_s, phases, rebuilt, peak, cold_build_s, rss_build_s)
        path.write_text(replace_section(path.read_text(), "startup", body))


def markdown(
    args: argparse.Namespace,
    first_s: float,
    phases: dict[str, float],
    rebuilt: bool,
    peak: int,
    cold_build_s: float,
    rss_build_s: float,
) -> str:
    index_ok = "met" if phases["index"] < 1 and not rebuilt else "**missed**"
    rss_ok = "met" if peak < 1.5 * 10**9 else "**missed**"
    return "\n".join(
        [
            "## Cold start and memory of `serve` (`bench/serve_startup.py`)",
            "",
            machine_line(),
            "",
            f"Synthetic snapshots of the default model's dimension ({DIM}-d, {IMAGES_PER_PRODUCT} images "
            "a product, index types as a build picks them), published to a data dir beforehand "
            f"(not timed: {cold_build_s:.0f} s and {rss_build_s:.0f} s here). "
            "`imagematch serve --workers 0` is started and a photo is POSTed to `/v1/match` until it "
            "answers.",
            "",
            "| figure | value | goal |",
            "|---|---|---|",
            f"| process start → first `/v1/match` answered, {args.products:,} products "
            f"({phases['vectors']:,} vectors) | {first_s:.2f} s | – |",
            f"| … imports (torch, FastAPI, imagematch) | {phases['imports']:.2f} s | – |",
            f"| … model load | {phases['model']:.2f} s | – |",
            f"| … index load (`SnapshotStore.load`) | {phases['index']:.2f} s | < 1 s, nothing rebuilt: "
            f"{'rebuilt!' if rebuilt else 'snapshot unchanged'} ({index_ok}) |",
            f"| peak RSS (VmHWM) of `serve` after 20 matches, {args.rss_vectors:,} vectors | "
            f"{peak / 10**9:.2f} GB | < 1.5 GB ({rss_ok}) |",
            "",
            "The phases are timed in a separate fresh process; the rest of the first answer is the "
            "server start and the first match itself (decode, embed, search).",
        ]
    )


if __name__ == "__main__":
    main()
