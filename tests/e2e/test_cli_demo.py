"""The demo flow on the real offline model (EfficientNet-Lite0) and the shipped sample catalog:
build → rebuild (incremental) → match → eval → serve. Runs the installed `imagematch` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.conftest import SAMPLE_CATALOG, SAMPLE_QUERIES, RunningServer, wait_until

pytestmark = pytest.mark.slow
CLI = [sys.executable, "-m", "imagematch.cli"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("demo") / "data"


def run(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "IMAGEMATCH_DATA_DIR": str(data_dir), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=600, check=False)


def last_json(result: subprocess.CompletedProcess[str]) -> dict:  # type: ignore[type-arg]
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_build_then_rebuild_embeds_nothing(data_dir: Path) -> None:
    first = last_json(run(data_dir, "index", "build", "--catalog", str(SAMPLE_CATALOG), "--json"))
    assert first["products"] == 15 and first["images"] == 45 and first["embedded"] == 45
    second = last_json(run(data_dir, "index", "build", "--catalog", str(SAMPLE_CATALOG), "--json"))
    assert second["embedded"] == 0 and second["cached"] == 45 and second["version"] == "v000002"


def test_match_prints_a_top5(data_dir: Path) -> None:
    photo = SAMPLE_QUERIES.parent / "queries" / "q-00000.jpg"
    table = run(data_dir, "match", str(photo))
    assert table.returncode == 0 and "score" in table.stdout
    result = last_json(run(data_dir, "match", str(photo), "--json"))
    matches = result[str(photo)]["matches"]
    assert len(matches) == 5 and matches[0]["score"] >= matches[-1]["score"]
    assert {"product_id", "name", "score", "image_id"} <= set(matches[0])


def test_match_reports_a_bad_file_and_exits_nonzero(data_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "notes.jpg"
    bad.write_text("not a photo")
    result = run(data_dir, "match", str(bad))
    assert result.returncode == 1 and "not a decodable image" in result.stderr


def test_eval_json_last_line(data_dir: Path) -> None:
    summary = last_json(
        run(data_dir, "eval", "--catalog", str(SAMPLE_CATALOG), "--queries", str(SAMPLE_QUERIES), "--json")
    )
    assert summary["n"] == 30 and summary["images_per_second"] > 0
    assert 0 <= summary["recall@1"] <= summary["recall@5"] <= 1
    assert summary["recall@5"] >= 0.5  # 15 products: far above chance (0.33) on real weights


def test_serve_answers_and_processes_jobs(
    data_dir: Path, running_server: Callable[..., RunningServer]
) -> None:
    env = {**os.environ, "IMAGEMATCH_DATA_DIR": str(data_dir), "HF_HUB_OFFLINE": "1"}
    base = running_server(env, ["--workers", "1"]).base_url  # a free port, never a fixed one
    photo = (SAMPLE_QUERIES.parent / "queries" / "q-00001.jpg").read_bytes()
    matched = httpx.post(f"{base}/v1/match", files={"file": ("q.jpg", photo, "image/jpeg")}, timeout=60)
    assert matched.status_code == 200 and len(matched.json()["matches"]) == 5
    job = httpx.post(f"{base}/v1/images", files={"file": ("q.jpg", photo, "image/jpeg")}, timeout=60).json()

    def complete() -> bool:
        return bool(httpx.get(f"{base}/v1/jobs/{job['id']}", timeout=10).json()["status"] == "complete")

    assert wait_until(complete, 60, step=0.2)
    assert httpx.get(f"{base}/v1/jobs/{job['id']}", timeout=10).json()["prediction"]["matches"]


def test_help_lists_every_command() -> None:
    result = subprocess.run([*CLI, "--help"], capture_output=True, text=True, timeout=60, check=True)
    for command in ("index", "match", "eval", "serve", "worker", "submit", "sweep", "jobs"):
        assert command in result.stdout
