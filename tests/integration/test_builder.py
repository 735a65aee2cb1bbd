from __future__ import annotations

import io
import json
from pathlib import Path

from PIL import Image

from imagematch.app import Services
from imagematch.config import Settings
from imagematch.index import SnapshotStore
from index_builder import rebuild_catalog_index
from tests.conftest import PALETTE, image_bytes


def _build(services: Services, catalog: Path, snapshots: SnapshotStore | None = None):  # type: ignore[no-untyped-def]
    return rebuild_catalog_index(services, str(catalog), snapshots=snapshots)


def test_second_build_embeds_nothing(services: Services, catalog_file: Path) -> None:
    index, report = _build(services, catalog_file)  # the fixture already built once
    assert report.embedded == 0 and report.cached == 8 and report.products == 4
    assert index.vector_count == 8 and report.version == "v000002"


def test_a_changed_image_is_the_only_one_embedded(services: Services, catalog_file: Path) -> None:
    (catalog_file.parent / "img" / "red-1.png").write_bytes(image_bytes(PALETTE["red"], mark=2))
    _, report = _build(services, catalog_file)
    assert (report.embedded, report.cached) == (1, 7)


def test_bad_images_are_reported_and_never_abort(services: Services, tmp_path: Path) -> None:
    (tmp_path / "ok.png").write_bytes(image_bytes((1, 2, 3)))
    (tmp_path / "junk.png").write_bytes(b"this is not a png")
    catalog = tmp_path / "catalog.json"
    catalog.write_text(
        json.dumps(
            [
                {"id": "OK", "name": "Fine", "images": ["ok.png", "missing.png"]},
                {"id": "BAD", "name": "Broken", "images": ["junk.png"]},
                {"id": "NONE", "name": "No pictures", "images": []},
                {"name": "row without id"},
            ]
        )
    )
    index, report = _build(services, catalog, SnapshotStore(tmp_path / "idx"))
    reasons = {Path(p.uri).name: p.reason for p in report.failed_images}
    assert "file not found" in reasons["missing.png"]
    assert "not a decodable image" in reasons["junk.png"]
    assert report.products_without_images == {"BAD": "all 1 images failed", "NONE": "no images listed"}
    assert len(report.catalog_problems) == 1 and "row 4" in report.catalog_problems[0]
    assert index.vector_count == 1 and set(index.products) == {"OK", "BAD", "NONE"}


def test_csv_catalog(services: Services, tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(image_bytes(PALETTE["red"]))
    (tmp_path / "b.png").write_bytes(image_bytes(PALETTE["blue"]))
    catalog = tmp_path / "catalog.csv"
    catalog.write_text("id,name,category,description,images\nX1,Red thing,toys,,a.png|b.png\n")
    index, report = _build(services, catalog, SnapshotStore(tmp_path / "idx"))
    assert report.images == 2 and index.products["X1"].name == "Red thing" and index.vector_count == 2


def test_grocery_rebuild_with_one_changed_image_embeds_exactly_one(
    services: Services, tmp_path: Path
) -> None:
    import shutil

    from tests.conftest import SAMPLE_CATALOG

    catalog = tmp_path / "grocery"
    shutil.copytree(SAMPLE_CATALOG.parent, catalog)
    _, first = _build(services, catalog / "products.json")
    assert first.embedded == first.images == 45
    (catalog / "images" / "GS-000-1.jpg").write_bytes(image_bytes(PALETTE["green"], fmt="JPEG"))
    index, second = _build(services, catalog / "products.json")
    assert (second.embedded, second.cached) == (1, 44) and len(index.products) == 15


def test_shoot_views_build_an_index_that_finds_products_and_records_its_recipe(
    settings: Settings, catalog_file: Path
) -> None:
    from imagematch.app import build_services
    from imagematch.models import CatalogViews

    services = build_services(settings.model_copy(update={"catalog_views": CatalogViews.SHOOT}))
    try:
        index, report = _build(services, catalog_file)
        assert report.embedded == 8 and index.recipe["catalog_views"] == "shoot"
        photo = Image.open(io.BytesIO(image_bytes(PALETTE["red"], mark=0))).convert("RGB")
        best = index.search(services.embedder.embed([photo]), 1, embedder_id=services.embedder.embedder_id)
        assert best[0][0].product_id == "P-red"
        again, second = _build(services, catalog_file)  # cached under the shoot view set
        assert second.embedded == 0 and again.recipe["catalog_views"] == "shoot"
        reloaded = services.snapshots.load(embedder_id=services.embedder.embedder_id)
        assert reloaded.catalog_views is CatalogViews.SHOOT
    finally:
        services.close()
