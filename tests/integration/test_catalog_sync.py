"""Live catalog updates through the library: upsert, update, delete, restart, storms, rebuilds."""

from __future__ import annotations

import contextlib
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image

from imagematch.app import Services, build_services
from imagematch.catalog_sync import LiveCatalog
from imagematch.config import Settings
from imagematch.errors import PermanentError, SubjectGoneError
from imagematch.images import decode_image
from imagematch.index import IndexHandle
from imagematch.models import Product
from index_builder import rebuild_catalog_index
from tests.conftest import PALETTE, ImageHost, image_bytes

PURPLE = (150, 20, 160)
ORANGE = (250, 140, 10)


def _live(services: Services) -> LiveCatalog:
    assert isinstance(services.catalog_updater, LiveCatalog)  # what build_services wires in
    return services.catalog_updater


def _photo(colour: tuple[int, int, int], mark: int = 3) -> Image.Image:
    return decode_image(image_bytes(colour, mark=mark), max_bytes=10**7, max_pixels=10**7)


def _top(services: Services, colour: tuple[int, int, int]) -> list[str]:
    return [m.product_id for m in services.matcher.match_image(_photo(colour)).matches]


def _product(host: ImageHost, colour: tuple[int, int, int], name: str, product_id: str = "P-new") -> Product:
    urls = [host.put(f"/{name}-{mark}.png", image_bytes(colour, mark=mark)) for mark in range(2)]
    return Product(id=product_id, name=name, category="colour", images=urls)


def test_create_update_delete_and_restart(services: Services, image_host: ImageHost) -> None:
    live = _live(services)
    live.upsert_product(_product(image_host, PURPLE, "purple"), sequence=1)
    assert _top(services, PURPLE)[0] == "P-new"  # searchable at once, no rebuild

    live.upsert_product(_product(image_host, ORANGE, "orange"), sequence=2)
    assert _top(services, ORANGE)[0] == "P-new"
    index = services.index.get()
    assert index.products["P-new"].name == "orange"
    vector_ids = index.product_vector_ids("P-new")  # the old vectors are gone, the new ones in
    assert len(vector_ids) == 2 and all("orange" in index.images[v].uri for v in vector_ids)

    assert live.delete_product("P-new", sequence=3)
    assert "P-new" not in _top(services, ORANGE)
    assert "P-new" in services.index.get().deleted

    # A restart (a fresh process on the same data dir) replays the change log, embedding nothing.
    restarted = build_services(services.settings.model_copy())
    try:
        index = restarted.index.get()
        assert "P-new" not in index.products and "P-new" in index.deleted
        assert set(index.products) == {f"P-{name}" for name in PALETTE}
    finally:
        restarted.close()


def test_restart_keeps_a_live_product_without_reembedding(services: Services, image_host: ImageHost) -> None:
    _live(services).upsert_product(_product(image_host, PURPLE, "purple"), sequence=1)
    image_host.files.clear()  # the images are gone from the web: a restart must not need them
    restarted = build_services(services.settings.model_copy())
    try:
        assert _top(restarted, PURPLE)[0] == "P-new"
    finally:
        restarted.close()


def test_another_process_sees_the_change_on_refresh(services: Services, image_host: ImageHost) -> None:
    other = IndexHandle(services.snapshots, services.embedder.embedder_id, check_seconds=0)
    assert "P-new" not in other.get().products
    _live(services).upsert_product(_product(image_host, PURPLE, "purple"), sequence=1)
    assert "P-new" in other.get().products


def test_a_storm_of_updates_ends_in_the_last_state(services: Services, image_host: ImageHost) -> None:
    live = _live(services)
    colours = [PURPLE, ORANGE, *PALETTE.values()] * 2
    products = []
    for sequence, colour in enumerate(colours[:10], start=1):
        url = image_host.put(f"/storm-{sequence}.png", image_bytes(colour, mark=sequence))
        products.append((sequence, Product(id="P-storm", name=f"v{sequence}", images=[url])))
    random.Random(7).shuffle(products)

    def apply(item: tuple[int, Product]) -> None:
        with contextlib.suppress(SubjectGoneError):  # overtaken by a newer event: skipped
            live.upsert_product(item[1], sequence=item[0])

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(apply, products))
    index = services.index.get()
    assert index.products["P-storm"].name == "v10" and index.sequences["P-storm"] == 10
    restarted = build_services(services.settings.model_copy())
    try:
        assert restarted.index.get().products["P-storm"].name == "v10"
    finally:
        restarted.close()


def test_an_update_overtaken_by_a_delete_is_skipped(services: Services, image_host: ImageHost) -> None:
    live = _live(services)
    assert live.delete_product("P-red", sequence=5)
    with pytest.raises(SubjectGoneError, match="deleted"):
        live.upsert_product(_product(image_host, PURPLE, "late", "P-red"), sequence=4)
    assert not live.delete_product("P-unknown", sequence=6)


def test_a_product_without_usable_images_is_recorded_and_reported(
    services: Services, image_host: ImageHost
) -> None:
    product = Product(id="P-broken", name="broken", images=[image_host.base_url + "/missing.png"])
    with pytest.raises(PermanentError, match="no usable image"):
        _live(services).upsert_product(product, sequence=1)
    index = services.index.get()
    assert "P-broken" in index.products and not index.product_vector_ids("P-broken")


def test_a_full_rebuild_folds_the_log_and_purges_deleted(
    services: Services, image_host: ImageHost, catalog_file: Path
) -> None:
    live = _live(services)
    live.upsert_product(_product(image_host, PURPLE, "purple"), sequence=1)
    live.delete_product("P-red", sequence=2)
    assert services.snapshots.changes(services.embedder.embedder_id).sequences() == [1, 2]
    index, _ = rebuild_catalog_index(services, str(catalog_file))
    # The catalog file is the truth: it lists P-red and not P-new.
    assert "P-red" in index.products and "P-new" not in index.products and not index.deleted
    assert services.snapshots.changes(services.embedder.embedder_id).sequences() == []


def test_catalog_events_before_any_build_start_an_empty_index(
    settings: Settings, image_host: ImageHost
) -> None:
    services = build_services(settings)
    try:
        _live(services).upsert_product(_product(image_host, PURPLE, "purple"), sequence=1)
        assert _top(services, PURPLE) == ["P-new"]
    finally:
        services.close()


def test_a_rebuild_remembers_a_delete_so_an_older_update_cannot_bring_the_product_back(
    services: Services, image_host: ImageHost, catalog_file: Path
) -> None:
    """P-new is created (#1); its update (#2) fails to download and waits in backoff; the delete
    (#3) is applied; the nightly rebuild publishes a snapshot from the catalog (which does not list
    P-new); then the update's retry runs (a retry, a manual retry or `requeue --scope all`)."""
    live = _live(services)
    live.upsert_product(_product(image_host, PURPLE, "purple"), sequence=1)
    late_update = _product(image_host, ORANGE, "orange")
    assert live.delete_product("P-new", sequence=3)

    rebuild_catalog_index(services, str(catalog_file))
    assert services.index.refresh()  # the workers now serve the rebuilt snapshot
    with pytest.raises(SubjectGoneError, match="deleted by a newer event"):
        live.upsert_product(late_update, sequence=2)
    assert "P-new" not in services.index.get().products and "P-new" not in _top(services, ORANGE)

    # Remembered across a second rebuild and a restart too.
    rebuild_catalog_index(services, str(catalog_file))
    restarted = build_services(services.settings.model_copy())
    try:
        with pytest.raises(SubjectGoneError, match="deleted by a newer event"):
            _live(restarted).upsert_product(late_update, sequence=2)
        assert "P-new" not in restarted.index.get().products
        assert "P-new" not in _top(restarted, ORANGE)
    finally:
        restarted.close()


def test_a_rebuild_keeps_the_order_of_updates_to_a_product_it_lists(
    services: Services, image_host: ImageHost, catalog_file: Path
) -> None:
    """The catalog lists P-red: the rebuild takes it from the catalog, but an event older than the
    last one applied before the rebuild is still stale afterwards; a newer one still applies."""
    live = _live(services)
    live.upsert_product(_product(image_host, PURPLE, "purple", "P-red"), sequence=5)
    rebuild_catalog_index(services, str(catalog_file))
    services.index.refresh()
    assert services.index.get().products["P-red"].name == "Red"  # the catalog is the truth
    with pytest.raises(SubjectGoneError, match="updated by a newer event"):
        live.upsert_product(_product(image_host, ORANGE, "orange", "P-red"), sequence=4)
    live.upsert_product(_product(image_host, ORANGE, "orange", "P-red"), sequence=6)
    assert services.index.get().products["P-red"].name == "orange"
