"""``build_services``' one model knob, ``embedder``: load the configured model (``True``, or ``""``),
load another spec, use an instance as is, or load none (``False``)."""

from __future__ import annotations

import pytest

from imagematch.app import build_services
from imagematch.config import Settings
from imagematch.embedder.absent import ModelNotLoaded
from imagematch.embedder.tiny import TinyEmbedder


@pytest.mark.parametrize("choice", [True, ""])
def test_the_configured_model_is_loaded_by_default(settings: Settings, choice: bool | str) -> None:
    services = build_services(settings, embedder=choice)
    try:
        assert isinstance(services.embedder, TinyEmbedder) and services.model == "tiny"
    finally:
        services.close()


def test_a_spec_is_loaded_instead_and_becomes_the_services_model(settings: Settings) -> None:
    services = build_services(settings.model_copy(update={"model": "efficientnet:lite0"}), embedder="tiny")
    try:
        assert isinstance(services.embedder, TinyEmbedder)
        assert services.model == services.settings.model == "tiny"
    finally:
        services.close()


def test_an_instance_is_used_as_is_and_false_loads_none(settings: Settings) -> None:
    mine = TinyEmbedder()
    services, without = build_services(settings, embedder=mine), build_services(settings, embedder=False)
    try:
        assert services.embedder is mine
        assert isinstance(without.embedder, ModelNotLoaded) and without.model == "tiny"
    finally:
        services.close()
        without.close()
