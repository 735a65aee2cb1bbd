"""An uploaded photo's thumbnail costs its job nothing: it is made from the stored original when
first asked for, or when the original is purged; once both are gone it is a clear 404."""

from __future__ import annotations

import io
import os
from datetime import timedelta

from fastapi.testclient import TestClient
from PIL import Image

from imagematch.app import Services
from imagematch.images import sha256_hex
from imagematch.retention import purge_stored_photos
from tests.conftest import PALETTE, ImageHost, image_bytes


def _processed_upload(client: TestClient, services: Services, data: bytes) -> tuple[int, str]:
    """Upload ``data``, run its job; its job id and the photo's SHA-256."""
    response = client.post("/v1/images", files={"file": ("photo.png", data, "image/png")})
    assert response.status_code == 202, response.text
    services.make_worker().drain()
    return int(response.json()["id"]), sha256_hex(data)


def test_an_uploads_thumbnail_is_made_when_first_asked_for(client: TestClient, services: Services) -> None:
    data = image_bytes(PALETTE["red"], size=(400, 300))
    job_id, digest = _processed_upload(client, services, data)
    assert not services.thumbnails.has(digest)  # the job wrote none
    assert services.thumbnails.job_photo(job_id) == digest  # but the console knows it has one

    response = client.get(f"/v1/jobs/{job_id}/thumbnail")
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    assert max(Image.open(io.BytesIO(response.content)).size) == 256
    thumbnail = services.thumbnails.path(digest)
    assert thumbnail.stat().st_mtime == services.blobs.path(digest).stat().st_mtime  # dated as the upload
    assert client.get(f"/ui/thumbs/{digest}.jpg").content == response.content


def test_a_fetched_photos_thumbnail_is_written_by_its_job(
    client: TestClient, services: Services, image_host: ImageHost
) -> None:
    data = image_bytes(PALETTE["green"], size=(300, 300))
    image_host.files["/green.png"] = data
    response = client.post("/v1/images", json={"url": f"{image_host.base_url}/green.png"})
    assert response.status_code == 202, response.text
    services.make_worker().drain()
    assert services.thumbnails.has(sha256_hex(data))  # no original is kept to make it from later


def test_an_upload_gone_before_its_thumbnail_was_made_is_a_404(
    client: TestClient, services: Services
) -> None:
    data = image_bytes(PALETTE["blue"], size=(300, 200))
    job_id, digest = _processed_upload(client, services, data)
    services.blobs.path(digest).unlink()  # removed behind retention's back: nothing to make it from

    for params in ({}, {"format": "json"}):
        response = client.get(f"/v1/jobs/{job_id}/thumbnail", params=params)
        assert response.status_code == 404 and "no thumbnail" in response.json()["detail"]
    assert client.get(f"/ui/thumbs/{digest}.jpg").status_code == 404
    assert services.thumbnails.job_photo(job_id) is None  # pages show no picture for it


def test_purging_an_upload_keeps_its_thumbnail_for_the_thumbnails_retention(
    client: TestClient, services: Services
) -> None:
    data = image_bytes(PALETTE["yellow"], size=(300, 300))
    job_id, digest = _processed_upload(client, services, data)
    original = services.blobs.path(digest)
    uploaded = (services.clock() - timedelta(days=40)).timestamp()
    os.utime(original, (uploaded, uploaded))

    report = purge_stored_photos(services)
    assert report.blobs_removed == 1 and not original.exists()
    assert services.thumbnails.has(digest)
    assert services.thumbnails.path(digest).stat().st_mtime == uploaded
    assert client.get(f"/v1/jobs/{job_id}/thumbnail").status_code == 200
