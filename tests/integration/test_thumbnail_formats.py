"""Thumbnails are JPEG now; WebP ones written before stay served, with their own content type, and
a thumbnail that is gone (purged) is a 404 wherever it is asked for, never a server error."""

from __future__ import annotations

import io
from pathlib import Path

from fastapi.testclient import TestClient
from PIL import Image

from imagematch.app import Services
from imagematch.atomic_files import write_atomic
from imagematch.images import sha256_hex
from tests.conftest import PALETTE, image_bytes


def _upload(client: TestClient, data: bytes) -> int:
    response = client.post("/v1/images", files={"file": ("photo.png", data, "image/png")})
    assert response.status_code == 202, response.text
    return int(response.json()["id"])


def _as_legacy_webp(services: Services, digest: str) -> None:
    """Turn the job's JPEG thumbnail into the WebP file an older version would have written."""
    jpeg = services.thumbnails.ensure(digest)
    assert jpeg is not None and jpeg.suffix == ".jpg"
    buffer = io.BytesIO()
    Image.open(jpeg).save(buffer, format="WEBP")
    jpeg.with_suffix(".webp").write_bytes(buffer.getvalue())
    jpeg.unlink()


def test_a_thumbnail_written_as_webp_is_still_served_as_webp(client: TestClient, services: Services) -> None:
    data = image_bytes(PALETTE["red"], size=(400, 300))
    job_id = _upload(client, data)
    services.make_worker().drain()
    digest = sha256_hex(data)
    _as_legacy_webp(services, digest)
    assert services.thumbnails.has(digest) and services.thumbnails.path(digest).suffix == ".webp"

    for url in (f"/ui/thumbs/{digest}.webp", f"/ui/thumbs/{digest}.jpg", f"/v1/jobs/{job_id}/thumbnail"):
        response = client.get(url)
        assert response.status_code == 200 and response.headers["content-type"] == "image/webp", url
        assert Image.open(io.BytesIO(response.content)).format == "WEBP"
    as_json = client.get(f"/v1/jobs/{job_id}/thumbnail", params={"format": "json"}).json()
    assert as_json["content_type"] == "image/webp"
    assert as_json["data_url"].startswith("data:image/webp;base64,")

    services.thumbnails.put(digest, Image.new("RGB", (10, 10)))  # has one: nothing is rewritten
    assert not services.thumbnails.root.joinpath(digest[:2], f"{digest}.jpg").exists()


def test_a_purged_thumbnail_is_a_404_not_an_error(client: TestClient, services: Services) -> None:
    data = image_bytes(PALETTE["blue"], size=(300, 300))
    job_id = _upload(client, data)
    services.make_worker().drain()
    digest = sha256_hex(data)
    assert client.get(f"/v1/jobs/{job_id}/thumbnail").status_code == 200
    services.thumbnails.path(digest).unlink()  # purged by retention; the job's pointer is left
    services.blobs.path(digest).unlink()  # and so was the upload it could be made from again

    for params in ({}, {"format": "json"}):
        response = client.get(f"/v1/jobs/{job_id}/thumbnail", params=params)
        assert response.status_code == 404 and "no thumbnail" in response.json()["detail"]
    assert client.get(f"/ui/thumbs/{digest}.jpg").status_code == 404
    assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "complete"  # the job is unaffected


def test_purge_removes_old_jpeg_and_webp_thumbnails_alike(services: Services) -> None:
    root = services.thumbnails.root
    digests = [sha256_hex(bytes([n])) for n in range(2)]
    services.thumbnails.put(digests[0], Image.new("RGB", (300, 200)))
    write_atomic(root / digests[1][:2] / f"{digests[1]}.webp", b"RIFF")
    assert all(services.thumbnails.has(d) for d in digests)
    removed = services.thumbnails.purge(older_than_days=1, now=4e9)
    assert removed >= 2 and not any(services.thumbnails.has(d) for d in digests)


def test_write_atomic_makes_the_folder_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "file.bin"
    write_atomic(target, b"one")
    write_atomic(target, b"two" * 100_000)
    assert target.read_bytes() == b"two" * 100_000
    assert [p.name for p in target.parent.iterdir()] == ["file.bin"]
