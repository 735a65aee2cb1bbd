"""Loud failures (issue #26 item 11): ``imagematch eval`` on a catalog whose every image is refused
(files outside the catalog's folder, reached through links) exits non-zero and says how many
images were refused and why, instead of printing R@1 0.000 with exit 0."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from imagematch.cli import app as cli_app
from tests.conftest import PALETTE, image_bytes
from tests.reliability.conftest import Outcomes


def test_eval_on_a_catalog_of_refused_images_fails_loudly(tmp_path: Path, outcomes: Outcomes) -> None:
    outside, catalog = tmp_path / "outside", tmp_path / "catalog"
    outside.mkdir()
    catalog.mkdir()
    products, queries = [], []
    for name, colour in PALETTE.items():
        (outside / f"{name}.png").write_bytes(image_bytes(colour))
        (catalog / f"{name}.png").symlink_to(outside / f"{name}.png")  # a link leaving the folder
        products.append({"id": f"P-{name}", "name": name, "images": [f"{name}.png"]})
        (tmp_path / f"q-{name}.png").write_bytes(image_bytes(colour, mark=1))
        queries.append({"image": str(tmp_path / f"q-{name}.png"), "product_id": f"P-{name}"})
    (catalog / "products.json").write_text(json.dumps(products))
    (tmp_path / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in queries))
    env = {"IMAGEMATCH_DATA_DIR": str(tmp_path / "data"), "IMAGEMATCH_MODEL": "tiny"}
    result = CliRunner().invoke(
        cli_app,
        ["eval", "--catalog", str(catalog / "products.json"), "--queries", str(tmp_path / "queries.jsonl")],
        env=env,
    )
    assert result.exit_code != 0, result.output
    assert "4 of 4 catalog images refused" in " ".join(result.output.split()), result.output
    assert "outside the catalog's own location" in result.output
    outcomes.record(
        "bad-input",
        "eval on a catalog whose every image is a link out of its folder",
        f"exit {result.exit_code}: 4 of 4 catalog images refused, each with its reason",
    )
