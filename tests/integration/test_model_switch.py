"""Switching the model without downtime: the new snapshot is built beside the served one, checked,
then made current; processes holding the old model keep serving until they restart."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imagematch.app import Services, build_services, serving_model
from imagematch.embedder import Vectors
from imagematch.embedder.tiny import TinyEmbedder
from imagematch.errors import TransientError
from imagematch.models import Product
from imagematch.sources.catalog import ProductChanged, catalog_event_job
from index_builder.model_switch import switch_model
from tests.conftest import PALETTE, ImageHost, image_bytes


class NextModel(TinyEmbedder):
    """Another model: same pixels, another id (its vectors are not comparable with tiny's)."""

    embedder_id = "tiny-next@2"


class BrokenModel(NextModel):
    """A model whose weights did not load: every image gets the same vector."""

    embedder_id = "tiny-broken@3"

    def embed(self, images: Sequence[Image.Image]) -> Vectors:
        vectors = np.zeros((len(images), self.dim), dtype=np.float32)
        vectors[:, 0] = 1.0
        return vectors


def test_switch_builds_beside_checks_then_flips(
    services: Services, catalog_file: Path, image_host: ImageHost
) -> None:
    # A live catalog event the old model applied: it must be applied again with the new model.
    urls = [image_host.put("/teal.png", image_bytes((0, 128, 128)))]
    event = ProductChanged(event="product.created", product=Product(id="P-teal", name="Teal", images=urls))
    job, _ = services.ledger.submit(catalog_event_job(event, event.model_dump(mode="json")))
    assert services.make_worker().drain() == 1
    served_before = services.index.get().version

    next_settings = services.settings.model_copy(update={"model": "tiny-next"})
    new = build_services(next_settings, embedder=NextModel(), ledger=services.ledger)
    report = switch_model(new, str(catalog_file))

    assert report.promoted and report.check.passed and report.check.samples == 4
    assert new.snapshots.current_version() == report.candidate != served_before
    assert report.requeued == [job.id]
    assert serving_model(services.settings) == "tiny-next"  # what processes started now load

    # The old process keeps answering from its own snapshot, and leaves catalog events alone.
    assert services.index.refresh() is False  # its next look at CURRENT (every few seconds)
    photo = Image.new("RGB", (32, 32), PALETTE["red"])
    assert services.matcher.match_image(photo).matches[0].product_id == "P-red"
    assert services.index.waiting_for_model == report.candidate
    with pytest.raises(TransientError, match="needs another model"):
        services.catalog_updater.upsert_product(event.product, sequence=job.id)  # type: ignore[union-attr]

    # A process with the new model applies the re-queued event, embedded by the new model.
    assert new.make_worker().drain() == 1
    assert new.index.get().embedder_id == "tiny-next@2" and "P-teal" in new.index.get().products


def test_a_model_that_fails_the_check_is_not_promoted(services: Services, catalog_file: Path) -> None:
    served_before = services.snapshots.current_version()
    broken_settings = services.settings.model_copy(update={"model": "tiny-broken"})
    broken = build_services(broken_settings, embedder=BrokenModel(), ledger=services.ledger)
    report = switch_model(broken, str(catalog_file))
    assert not report.promoted and report.check.value < 0.9
    assert services.snapshots.current_version() == served_before
