"""Renamed settings keep their old environment spelling for one release."""

from __future__ import annotations

import pytest

from imagematch.config import Settings


@pytest.mark.parametrize("variable", ["IMAGEMATCH_CATALOG", "IMAGEMATCH_CATALOG_SOURCE"])
def test_the_catalog_is_read_from_its_new_and_its_old_variable(
    variable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IMAGEMATCH_CATALOG", raising=False)
    monkeypatch.delenv("IMAGEMATCH_CATALOG_SOURCE", raising=False)
    monkeypatch.setenv(variable, "/data/catalog/products.json")
    assert Settings().catalog == "/data/catalog/products.json"


def test_the_new_variable_wins_over_the_old(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGEMATCH_CATALOG", "supabase:")
    monkeypatch.setenv("IMAGEMATCH_CATALOG_SOURCE", "/old/products.json")
    assert Settings().catalog == "supabase:"


def test_the_catalog_is_set_by_its_field_name() -> None:
    assert Settings(catalog="supabase:").catalog == "supabase:"
