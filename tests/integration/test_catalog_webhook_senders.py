"""What a shop would run works against a real server: the README's Python and curl/openssl examples
and `imagematch catalog send-event`, over HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from pydantic import SecretStr
from typer.testing import CliRunner

from imagematch.api import create_webhook_app
from imagematch.app import Services, build_services
from imagematch.cli import app as cli
from imagematch.config import Settings
from imagematch.sources.catalog import CATALOG_EVENT_KIND

SECRET = "sender-secret-for-tests"  # a test fixture, not a credential
README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def _readme_block(language: str, containing: str) -> str:
    blocks = re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)
    [block] = [b for b in blocks if containing in b]
    return str(block)


@pytest.fixture
def webhook_services(settings: Settings) -> Iterator[Services]:
    settings = settings.model_copy(update={"catalog_webhook_secret": SecretStr(SECRET)})
    services = build_services(settings)
    yield services
    services.close()


@pytest.fixture
def server_url(webhook_services: Services) -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(
            create_webhook_app(webhook_services.settings, webhook_services.ledger), log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        threading.Event().wait(0.02)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(timeout=10)


def _catalog_jobs(services: Services) -> list[str]:
    return [j.payload["event_id"] for j in services.ledger.list_jobs() if j.kind == CATALOG_EVENT_KIND]


def test_the_readme_python_example_is_accepted(
    server_url: str, webhook_services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMAGEMATCH_CATALOG_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("IMAGEMATCH_URL", server_url)
    exec(_readme_block("python", "hmac.new"), {})
    assert _catalog_jobs(webhook_services) == ["evt-9a01"]


@pytest.mark.skipif(not (shutil.which("openssl") and shutil.which("curl")), reason="needs openssl and curl")
def test_the_readme_curl_example_is_accepted(server_url: str, webhook_services: Services) -> None:
    env = {"PATH": "/usr/bin:/bin", "IMAGEMATCH_CATALOG_WEBHOOK_SECRET": SECRET, "IMAGEMATCH_URL": server_url}
    done = subprocess.run(
        ["bash", "-c", _readme_block("bash", "openssl dgst")], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "pending"
    assert _catalog_jobs(webhook_services) == ["evt-9a02"]


def test_send_event_signs_and_reports_the_job(
    server_url: str, webhook_services: Services, tmp_path: Path
) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"event": "product.deleted", "event_id": "evt-cli", "product_id": "P1"}))
    runner = CliRunner()
    command = ["catalog", "send-event", str(event), "--url", f"{server_url}/webhooks/catalog", "--json"]
    sent = runner.invoke(cli, command, env={"IMAGEMATCH_CATALOG_WEBHOOK_SECRET": SECRET})
    assert sent.exit_code == 0, sent.output
    assert json.loads(sent.stdout.strip().splitlines()[-1])["kind"] == "catalog_event"
    assert _catalog_jobs(webhook_services) == ["evt-cli"]

    wrong = runner.invoke(cli, command, env={"IMAGEMATCH_CATALOG_WEBHOOK_SECRET": "not-the-secret"})
    assert wrong.exit_code == 1 and "HTTP 401" in wrong.output
    event.write_text('{"event": "product.deleted"}')
    malformed = runner.invoke(cli, command, env={"IMAGEMATCH_CATALOG_WEBHOOK_SECRET": SECRET})
    assert malformed.exit_code == 1 and "product_id" in malformed.output
