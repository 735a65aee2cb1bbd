"""Addendum (2026-12-01): the shipped fusion option against the default, per query, end to end.

Usage, once per configuration (the settings are the product's ``IMAGEMATCH_*`` variables)::

    IMAGEMATCH_DATA_DIR=/tmp/q python fusion_shipped.py ranks CATALOG QUERIES default.json
    IMAGEMATCH_DATA_DIR=/tmp/q IMAGEMATCH_MODEL=efficientnet:lite0@320+efficientnet:lite2@260 \\
        python fusion_shipped.py ranks CATALOG QUERIES fusion.json
    python fusion_shipped.py compare default.json fusion.json

``ranks`` runs what ``imagematch eval`` runs (catalog build, then every query) and keeps where the
right product landed for each query; ``compare`` prints the paired bootstrap on val and its halves
(val sorted by product, 148 + 148 photos, disjoint products; 2,000 resamples), as in REPORT.md.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path


def ranks(catalog: Path, queries: Path, out: Path) -> None:
    from imagematch.app import build_services
    from imagematch.cli.terminal import load_settings
    from imagematch.evaluation import evaluate, load_queries
    from imagematch.images import sha256_hex
    from imagematch.index import SnapshotStore
    from index_builder import rebuild_catalog_index

    services = build_services(load_settings())
    key = sha256_hex(str(catalog.resolve()).encode())[:12]
    snapshots = SnapshotStore(services.settings.data_dir / "eval" / key, keep=2)
    labelled = load_queries(queries)
    index, _ = rebuild_catalog_index(services, str(catalog.resolve()), snapshots=snapshots)
    result = evaluate(
        labelled, embedder=services.embedder, index=index, limits=services.limits, batch_size=16
    )
    assert not result.skipped, result.skipped
    rows = [
        {"image": str(q.image), "product": q.product_id, "split": o.split, "rank": o.rank}
        for q, o in zip(labelled, result.outcomes, strict=True)
    ]
    out.write_text(json.dumps(rows))


def compare(base_path: Path, other_path: Path) -> None:
    base, other = json.loads(base_path.read_text()), json.loads(other_path.read_text())
    assert [r["image"] for r in base] == [r["image"] for r in other]
    val = sorted((i for i, r in enumerate(base) if r["split"] == "val"), key=lambda i: base[i]["product"])
    rng = random.Random(0)
    for k in (1, 5):
        for name, idx in (("val", val), ("val half a", val[:148]), ("val half b", val[148:])):
            diffs = [(0 < other[i]["rank"] <= k) - (0 < base[i]["rank"] <= k) for i in idx]
            boots = sorted(sum(rng.choice(diffs) for _ in diffs) / len(diffs) for _ in range(2000))
            print(
                f"ΔR@{k} {name}: {sum(diffs) / len(diffs):+.3f} "
                f"[95 % CI {boots[50]:+.3f}, {boots[1949]:+.3f}]"
            )


if __name__ == "__main__":
    if sys.argv[1] == "ranks":
        ranks(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]))
    else:
        compare(Path(sys.argv[2]), Path(sys.argv[3]))
