"""Catalog documents by URL (their own content types and size cap) and where their images may
point: local files only next to a local catalog file, never from a remote catalog."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from imagematch.app import Services, build_services
from imagematch.config import Settings
from imagematch.errors import PermanentError
from index_builder import load_catalog, read_uri
from tests.loopback import LoopbackServer, Route, loopback_server

PRODUCTS = [{"id": f"P{n}", "name": f"Product {n}", "images": [f"img/{n}.png"]} for n in range(40)]


@pytest.fixture
def small_images(settings: Settings) -> Iterator[Services]:
    """Services whose image cap (1 KB) is far below the catalog's size."""
    services = build_services(settings.model_copy(update={"max_image_bytes": 1_000}))
    yield services
    services.close()


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with loopback_server() as running:
        yield running


def test_a_json_catalog_by_url_is_read_with_its_own_cap(
    small_images: Services, server: LoopbackServer
) -> None:
    body = json.dumps(PRODUCTS).encode()
    assert len(body) > 1_000
    server.routes["/catalog"] = Route(headers={"Content-Type": "application/json; charset=utf-8"}, body=body)
    catalog = load_catalog(server.url("/catalog"), small_images.fetcher, settings=small_images.settings)
    assert len(catalog.products) == 40 and catalog.problems == []
    assert catalog.products[3].images == [server.url("/img/3.png")]


def test_a_csv_catalog_by_url_is_recognised_by_its_content_type(
    small_images: Services, server: LoopbackServer
) -> None:
    rows = "id,name,images\n" + "".join(f"P{n},Product {n},img/{n}.png|img/{n}b.png\n" for n in range(60))
    server.routes["/export"] = Route(headers={"Content-Type": "text/csv"}, body=rows.encode())
    catalog = load_catalog(server.url("/export"), small_images.fetcher, settings=small_images.settings)
    assert len(catalog.products) == 60 and len(catalog.products[0].images) == 2


def test_a_catalog_over_its_cap_or_of_another_type_is_refused(
    small_images: Services, server: LoopbackServer
) -> None:
    settings = small_images.settings.model_copy(update={"max_catalog_bytes": 500})
    server.routes["/big"] = Route(
        headers={"Content-Type": "application/json"}, body=json.dumps(PRODUCTS).encode()
    )
    server.routes["/page"] = Route(headers={"Content-Type": "text/html"}, body=b"<html></html>")
    with pytest.raises(PermanentError, match="the limit is 500"):
        load_catalog(server.url("/big"), small_images.fetcher, settings=settings)
    with pytest.raises(PermanentError, match="text/html"):
        load_catalog(server.url("/page"), small_images.fetcher, settings=settings)


def test_a_remote_catalog_cannot_name_local_files(services: Services, server: LoopbackServer) -> None:
    products = [
        {"id": "A", "images": ["file:///dev/zero", "/etc/passwd", "img/ok.png", "https://cdn.example/x.png"]}
    ]
    server.routes["/c.json"] = Route(
        headers={"Content-Type": "application/json"}, body=json.dumps(products).encode()
    )
    catalog = load_catalog(server.url("/c.json"), services.fetcher, settings=services.settings)
    assert catalog.products[0].images == [server.url("/img/ok.png"), "https://cdn.example/x.png"]
    assert len(catalog.problems) == 2 and all("outside the catalog" in p for p in catalog.problems)


def test_a_local_catalog_reads_files_only_inside_its_directory(services: Services, tmp_path: Path) -> None:
    root = tmp_path / "shop"
    (root / "img").mkdir(parents=True)
    (root / "img" / "a.png").write_bytes(b"png")
    (tmp_path / "secret.png").write_bytes(b"secret")
    images = [
        "img/a.png",
        (root / "img" / "a.png").as_uri(),
        "../secret.png",
        "file:///dev/zero",
        "/etc/passwd",
    ]
    (root / "products.json").write_text(json.dumps([{"id": "A", "images": images}]))
    catalog = load_catalog(str(root / "products.json"), services.fetcher)
    inside = str((root / "img" / "a.png").resolve())
    assert catalog.products[0].images == [inside, inside]
    assert len(catalog.problems) == 3


def test_local_reads_refuse_devices_and_oversized_files(services: Services, tmp_path: Path) -> None:
    with pytest.raises(PermanentError, match="not a regular file"):
        read_uri("file:///dev/zero", services.fetcher)
    big = tmp_path / "big.bin"
    big.write_bytes(b"0" * 2_000)
    with pytest.raises(PermanentError, match="larger than the limit of 1,000 bytes"):
        read_uri(str(big), services.fetcher, max_bytes=1_000)
