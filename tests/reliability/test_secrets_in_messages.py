"""Secrets in messages (issue #26 item 7): errors and ``repr(Settings)`` never show a URL's password,
its userinfo or a secret query value; one ``redact_url`` does it everywhere."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from imagematch.addresses import AddressPolicy
from imagematch.config import Settings, redact_url
from imagematch.errors import PermanentError
from imagematch.fetch import ImageFetcher
from imagematch.ledger import open_ledger
from imagematch.sources.zendesk.client import ZendeskClient
from index_builder.catalog import load_catalog
from tests.reliability.conftest import Outcomes

PASSWORD = "pw-never-shown-7f3a"
TOKEN = "tok-never-shown-91c2"


def test_open_ledger_hides_the_password_of_an_unsupported_url(outcomes: Outcomes) -> None:
    with pytest.raises(ValueError) as refused:
        open_ledger(f"mysql://app:{PASSWORD}@db.internal/ledger")
    assert PASSWORD not in str(refused.value) and "mysql://app:***@db.internal/ledger" in str(refused.value)
    outcomes.record("security", "ledger URL of an unsupported scheme, with a password", str(refused.value))


def test_settings_repr_hides_webhook_query_tokens_and_zendesk_userinfo(outcomes: Outcomes) -> None:
    settings = Settings(
        matches_webhook_url=f"https://hooks.example/in?token={TOKEN}&team=ops",
        zendesk_base_url=f"https://agent:{PASSWORD}@acme.zendesk.com",
    )
    shown = repr(settings) + str(settings)
    assert TOKEN not in shown and PASSWORD not in shown and "agent:***@acme.zendesk.com" in shown
    assert "https://hooks.example/in?token=***&team=ops" in shown
    only_user = Settings(zendesk_base_url=f"https://{TOKEN}@acme.zendesk.com")
    assert TOKEN not in repr(only_user) and "https://***@acme.zendesk.com" in repr(only_user)
    outcomes.record(
        "security", "repr(Settings) with a webhook URL token and Zendesk userinfo", "both shown as ***"
    )


def test_catalog_parse_errors_hide_the_source_password(tmp_path: Path, outcomes: Outcomes) -> None:
    fetcher = ImageFetcher(httpx.Client(timeout=5), max_bytes=10**6, policy=AddressPolicy.parse(True))
    bad = tmp_path / "products.json"
    bad.write_text("{not json")
    source = f"https://reader:{PASSWORD}@catalog.example/products.json?key={TOKEN}"
    for message in (
        _load_error(fetcher, bad.as_uri().replace("file://", f"file://reader:{PASSWORD}@")),
        _load_error(fetcher, "ftp://reader:" + PASSWORD + "@catalog.example/p.json"),
    ):
        assert PASSWORD not in message and TOKEN not in message, message
    assert PASSWORD not in redact_url(source) and TOKEN not in redact_url(source)
    outcomes.record(
        "security", "catalog parse error for a source URL with a password", "password shown as ***"
    )


def _load_error(fetcher: ImageFetcher, source: str) -> str:
    with pytest.raises(PermanentError) as refused:
        load_catalog(source, fetcher)
    return str(refused.value)


def test_zendesk_and_fetch_errors_hide_userinfo() -> None:
    with pytest.raises(Exception) as refused:
        ZendeskClient(httpx.Client(), f"ftp://agent:{PASSWORD}@acme.zendesk.com", "Basic x")
    assert PASSWORD not in str(refused.value)
    fetcher = ImageFetcher(httpx.Client(timeout=5), max_bytes=10**6, policy=AddressPolicy())
    for url in (f"ftp://u:{PASSWORD}@img.example/a.png", f"http://u:{PASSWORD}@img.example:99999/a.png"):
        with pytest.raises(PermanentError) as bad:
            fetcher.fetch(url)
        assert PASSWORD not in str(bad.value), json.dumps(str(bad.value))
