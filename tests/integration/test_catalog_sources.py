"""Catalogs in a database, on a real Postgres server: psycopg (`postgresql://…`) and supabase-py
through the PostgREST stand-in (`supabase:`), read into products exactly like a catalog file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pydantic import SecretStr

from imagematch.app import build_services
from imagematch.config import Settings
from imagematch.errors import PermanentError, TransientError
from imagematch.ledger import open_ledger
from imagematch.models import Product
from index_builder import load_catalog, rebuild_catalog_index
from index_builder.catalog_tables import CatalogTables, read_supabase_catalog
from tests.conftest import PALETTE, ImageHost, image_bytes
from tests.postgrest_standin import serve_postgrest

pytestmark = pytest.mark.postgres


@pytest.fixture
def catalog_db(postgres_url: str, image_host: ImageHost) -> str:
    """The migrated schema with five products: two with images (one listed out of order), one
    soft-deleted, one without images, one with unusable image URLs (a local file among them)."""
    open_ledger(postgres_url).close()
    images = {}
    for name, colour in PALETTE.items():
        images[name] = image_host.put(f"/{name}.png", image_bytes(colour))
    products = [
        ("P-red", "Red", "colour", None, {"shelf": 3}, None),
        ("P-blue", "Blue", "colour", "deep", {}, None),
        ("P-gone", "Gone", "colour", "", {}, "2026-01-01"),
        ("P-none", "No images", "", "", {}, None),
        ("P-bad", "Bad urls", "", "", {}, None),
    ]
    rows = [
        ("P-red", 1, images["yellow"]),
        ("P-red", 0, images["red"]),
        ("P-blue", 0, images["blue"]),
        ("P-gone", 0, images["green"]),
        ("P-bad", 0, "ftp://example.com/a.png"),
        ("P-bad", 1, "img/relative.png"),
        ("P-bad", 3, "file:///dev/zero"),
        ("P-bad", 2, "https://cdn.example.com/ok.png"),
    ]
    with psycopg.connect(postgres_url) as conn:
        for pid, name, category, description, metadata, deleted in products:
            conn.execute(
                "insert into catalog_products (id, name, category, description, metadata, deleted_at) "
                "values (%s, %s, %s, coalesce(%s, ''), %s, %s)",
                (pid, name, category, description, json.dumps(metadata), deleted),
            )
        conn.cursor().executemany(
            "insert into catalog_product_images (product_id, position, url) values (%s, %s, %s)", rows
        )
    return postgres_url


@pytest.fixture(params=["postgres", "supabase"])
def source(
    request: pytest.FixtureRequest, catalog_db: str, settings: Settings
) -> Iterator[tuple[str, Settings]]:
    if request.param == "postgres":
        yield catalog_db, settings
        return
    with serve_postgrest(catalog_db) as project_url:
        project = {"supabase_url": project_url, "supabase_service_key": SecretStr("service-role-key")}
        yield "supabase:", settings.model_copy(update=project)


def _load(source: tuple[str, Settings]) -> Any:
    url, settings = source
    services = build_services(settings)
    try:
        return load_catalog(url, services.fetcher, settings=settings)
    finally:
        services.close()


def test_live_products_with_images_in_position_order(source: tuple[str, Settings]) -> None:
    catalog = _load(source)
    by_id = {p.id: p for p in catalog.products}
    assert sorted(by_id) == ["P-bad", "P-blue", "P-none", "P-red"]  # P-gone is soft-deleted
    red = by_id["P-red"]
    assert [Path(u).stem for u in red.images] == ["red", "yellow"]
    assert red.images[0].startswith("http://") and red.metadata == {"shelf": 3} and red.description == ""
    assert by_id["P-blue"].description == "deep" and by_id["P-none"].images == []
    assert by_id["P-bad"].images == ["https://cdn.example.com/ok.png"]
    assert len(catalog.problems) == 3
    assert all("P-bad" in p and "not an http(s):// URL" in p for p in catalog.problems)


def test_supabase_pages_never_lose_rows(catalog_db: str) -> None:
    with psycopg.connect(catalog_db) as conn:
        for n in range(7):
            conn.execute("insert into catalog_products (id, name) values (%s, %s)", (f"Q-{n}", f"Q {n}"))
            for position in range(5):
                conn.execute(
                    "insert into catalog_product_images (product_id, position, url) values (%s, %s, %s)",
                    (f"Q-{n}", position, f"https://cdn.example.com/q{n}-{position}.png"),
                )
    from supabase import create_client

    with serve_postgrest(catalog_db) as project_url:
        client = create_client(project_url, "service-role-key-for-tests")
        rows = list(read_supabase_catalog(client, CatalogTables(), page_size=2))
    by_id = {row["id"]: row for row in rows}
    assert len(rows) == len(by_id) == 11
    assert by_id["Q-6"]["images"] == [f"https://cdn.example.com/q6-{p}.png" for p in range(5)]


def test_tables_of_your_own_through_views(catalog_db: str, settings: Settings) -> None:
    with psycopg.connect(catalog_db) as conn:
        conn.execute(
            "create table shop_items (sku integer primary key, title text, removed boolean, "
            "picture text, extra jsonb)"
        )
        conn.execute(
            "insert into shop_items values (1, 'Mug', false, 'https://cdn.example.com/mug.jpg', null), "
            "(2, 'Old mug', true, 'https://cdn.example.com/old.jpg', null), (3, null, false, null, null)"
        )
        conn.execute(
            "create view shop_products as select sku as id, title as name, ''::text as category, "
            "''::text as description, coalesce(extra, '{}') as metadata, "
            "case when removed then now() end as deleted_at from shop_items"
        )
        conn.execute(
            "create view shop_images as select sku as product_id, picture as url, 0 as position "
            "from shop_items where picture is not null"
        )
    settings = settings.model_copy(
        update={"catalog_table": "public.shop_products", "catalog_images_table": "shop_images"}
    )
    services = build_services(settings)
    catalog = load_catalog(catalog_db, services.fetcher, settings=settings)
    services.close()
    assert [(p.id, p.name, p.images) for p in catalog.products] == [
        ("1", "Mug", ["https://cdn.example.com/mug.jpg"]),
        ("3", "", []),
    ]


def test_unreadable_database_sources_fail_clearly(catalog_db: str, settings: Settings) -> None:
    services = build_services(settings)
    missing = settings.model_copy(update={"catalog_table": "no_such_table"})
    with pytest.raises(PermanentError, match="no_such_table"):
        load_catalog(catalog_db, services.fetcher, settings=missing)
    with pytest.raises(TransientError, match="unavailable"):
        load_catalog("postgresql://nobody@127.0.0.1:1/none", services.fetcher)
    with pytest.raises(PermanentError, match="IMAGEMATCH_SUPABASE_URL"):
        load_catalog("supabase:", services.fetcher, settings=settings)
    with pytest.raises(PermanentError, match="needs the settings"):
        load_catalog("supabase:", services.fetcher)
    services.close()


def test_an_index_builds_from_the_catalog_tables(catalog_db: str, settings: Settings) -> None:
    services = build_services(settings)
    index, report = rebuild_catalog_index(services, catalog_db)
    services.close()
    assert sorted(index.products) == ["P-bad", "P-blue", "P-none", "P-red"]
    assert report.embedded == 3 and len(report.catalog_problems) == 3
    assert [f.uri for f in report.failed_images] == ["https://cdn.example.com/ok.png"]
    assert set(report.products_without_images) == {"P-bad", "P-none"}


def test_default_tables_match_the_settings_defaults() -> None:
    fields = Settings.model_fields
    assert CatalogTables() == CatalogTables(
        fields["catalog_table"].default, fields["catalog_images_table"].default
    )
    assert Product(id="x").images == []


def test_index_build_reads_the_supabase_catalog_from_settings(
    catalog_db: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from imagematch.cli import app as cli

    with serve_postgrest(catalog_db) as project_url:
        monkeypatch.setenv("IMAGEMATCH_DATA_DIR", str(settings.data_dir))
        monkeypatch.setenv("IMAGEMATCH_MODEL", "tiny")
        monkeypatch.setenv("IMAGEMATCH_CATALOG", "supabase:")
        monkeypatch.setenv("IMAGEMATCH_SUPABASE_URL", project_url)
        monkeypatch.setenv("IMAGEMATCH_SUPABASE_SERVICE_KEY", "service-role-key")
        built = CliRunner().invoke(cli, ["index", "build", "--json"])
    assert built.exit_code == 0, built.output
    assert json.loads(built.stdout.strip().splitlines()[-1])["products"] == 4
