"""The reliability suite: bad input, abuse and faults against a real app, 127.0.0.1 only.

Every test records what it observed with ``outcomes.record(area, case, outcome)``; at the end of
the session the table is written to RELIABILITY.md (with the date and commit), the way the bench
scripts write BENCHMARKS.md. The SSRF block is ON here: no fixture admits private addresses
unless a test names the one it needs.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from imagematch.app import Services
from imagematch.config import Settings
from tests.conftest import REPO

ZENDESK_SECRET = "zendesk-webhook-secret-for-tests"  # test fixtures, not credentials
CATALOG_SECRET = "catalog-webhook-secret-for-tests"
REPORT = REPO / "RELIABILITY.md"
AREAS = {"bad-input": "Bad input", "security": "Security", "faults": "Faults"}


@dataclass
class Outcomes:
    rows: list[tuple[str, str, str]] = field(default_factory=list)

    def record(self, area: str, case: str, outcome: str) -> None:
        assert area in AREAS, area
        self.rows.append((area, case, outcome.replace("|", "\\|").replace("\n", " ")))


_OUTCOMES = Outcomes()


@pytest.fixture(scope="session")
def outcomes() -> Outcomes:
    return _OUTCOMES


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _OUTCOMES.rows:
        return
    lines = [
        "# Reliability",
        "",
        "Written by `tests/reliability/` (part of `make test`): each case → what the running service",
        "did. 127.0.0.1 only; the SSRF block is on unless a case names what it admits.",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC at commit `{_commit()}`"
        f" ({len(_OUTCOMES.rows)} cases; pytest exit status {exitstatus}).",
    ]
    for area, title in AREAS.items():
        rows = [(case, outcome) for a, case, outcome in _OUTCOMES.rows if a == area]
        if rows:
            lines += ["", f"## {title}", "", "| Case | Observed outcome |", "|---|---|"]
            lines += [f"| {case} | {outcome} |" for case, outcome in rows]
    REPORT.write_text("\n".join(lines) + "\n")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Production-like: SSRF block on, both webhooks signed, tiny model, no background workers."""
    return Settings(
        data_dir=tmp_path / "data",
        model="tiny",
        workers=0,
        retry_base_seconds=1,
        zendesk_webhook_secret=SecretStr(ZENDESK_SECRET),
        catalog_webhook_secret=SecretStr(CATALOG_SECRET),
    )


@pytest.fixture
def client(services: Services, app_client: Callable[..., TestClient]) -> TestClient:
    return app_client(services, client_options={"raise_server_exceptions": False})
