"""``imagematch eval --learn-from``: labelled photos are learned through the production path in a
fresh data dir, then the queries are evaluated on the result."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from imagematch.cli import app
from tests.integration.test_learning import two_colour


def _jsonl(folder: Path, name: str, rows: list[tuple[bytes, str]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for n, (photo, product_id) in enumerate(rows):
        (folder / f"{name}-{n}.png").write_bytes(photo)
        lines.append(json.dumps({"image": f"{name}-{n}.png", "product_id": product_id}))
    path = folder / f"{name}.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_eval_learn_from_reports_the_gain(tmp_path: Path, catalog_file: Path) -> None:
    labels = _jsonl(
        tmp_path / "photos",
        "labels",
        [
            (two_colour("red", "blue"), "P-blue"),
            (two_colour("red", "blue", mark=3), "P-blue"),
            (b"junk", "P-red"),
        ],
    )
    queries = _jsonl(tmp_path / "photos", "queries", [(two_colour("red", "blue", mark=1), "P-blue")])
    env = {
        "IMAGEMATCH_DATA_DIR": str(tmp_path / "data"),
        "IMAGEMATCH_MODEL": "tiny",
        "IMAGEMATCH_WORKERS": "0",
    }
    args = ["eval", "--catalog", str(catalog_file), "--queries", str(queries), "--json"]
    runner = CliRunner()
    before = runner.invoke(app, args, env=env)
    assert before.exit_code == 0, before.output
    assert json.loads(before.stdout.strip().splitlines()[-1])["recall@1"] == 0.0
    after = runner.invoke(app, [*args, "--learn-from", str(labels)], env=env)
    assert after.exit_code == 0, after.output
    summary = json.loads(after.stdout.strip().splitlines()[-1])
    assert summary["recall@1"] == 1.0
    assert summary["learned"]["labelled"] == 2 and summary["learned"]["skipped"] == 1
    assert summary["learned"]["learned_references"] == 2
    assert not (tmp_path / "data" / "ledger.sqlite3").exists() or "learn-from" not in (
        tmp_path / "data" / "ledger.sqlite3"
    ).read_bytes().decode("latin-1")  # learned in a fresh data dir, not the configured one
