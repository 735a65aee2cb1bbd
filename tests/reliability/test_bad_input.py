"""Bad input: each case is a clear 4xx (or a failed/skipped job with the reason), never a 500,
and the service still answers /healthz afterwards."""

from __future__ import annotations

import io
import json
import struct
import zlib
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from imagematch.app import Services
from imagematch.models import JobStatus
from tests.conftest import image_bytes
from tests.reliability.conftest import CATALOG_SECRET, Outcomes

pytestmark = pytest.mark.timeout(120)


def _encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int) -> bytes:
    """A few hundred bytes whose header claims ``width × height`` pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + _chunk(b"IEND", b"")
    )


def palette_bomb() -> bytes:
    return _encode(Image.new("P", (7745, 7745), 0), "PNG", optimize=True)  # ~60 KB → 60 MP


def jpeg() -> bytes:
    return image_bytes((200, 40, 40), size=(320, 240), fmt="JPEG")


def corrupt_exif() -> bytes:
    broken = b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x05\x01\x12\x00\x03\xff\xff"  # truncated IFD
    return _encode(Image.new("RGB", (64, 48), (10, 200, 10)), "JPEG", exif=broken)


def animated(fmt: str) -> bytes:
    frames = [Image.new("RGB", (32, 32), colour) for colour in [(220, 30, 30), (30, 40, 220)]]
    return _encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=50, loop=0)


def heic() -> bytes:
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    try:
        return _encode(Image.new("RGB", (64, 48), (220, 30, 30)), "HEIF")
    except (KeyError, OSError, ValueError):
        pytest.skip("this pillow-heif build cannot encode HEIC")


UPLOADS: dict[str, tuple[str, str, Callable[[], bytes]]] = {
    "0-byte file": ("empty.jpg", "image/jpeg", lambda: b""),
    "text named .jpg": ("notes.jpg", "image/jpeg", lambda: b"just some text, not a photo\n" * 20),
    "truncated JPEG": ("cut.jpg", "image/jpeg", lambda: jpeg()[: len(jpeg()) // 2]),
    "decompression bomb (palette PNG, 7,745² from ~60 KB)": ("bomb.png", "image/png", palette_bomb),
    "huge dimensions (header claims 30,000²)": (
        "huge.png",
        "image/png",
        lambda: png_claiming(30_000, 30_000),
    ),
    "HEIC": ("photo.heic", "image/heic", heic),
    "CMYK JPEG": (
        "cmyk.jpg",
        "image/jpeg",
        lambda: _encode(Image.new("CMYK", (64, 48), (0, 200, 200, 0)), "JPEG"),
    ),
    "16-bit PNG": ("deep.png", "image/png", lambda: _encode(Image.new("I;16", (64, 48), 30_000), "PNG")),
    "animated GIF": ("anim.gif", "image/gif", lambda: animated("GIF")),
    "animated WebP": ("anim.webp", "image/webp", lambda: animated("WEBP")),
    "SVG": ("logo.svg", "image/svg+xml", lambda: b'<svg xmlns="http://www.w3.org/2000/svg"><rect/></svg>'),
    "corrupt EXIF": ("exif.jpg", "image/jpeg", corrupt_exif),
}


def _detail(response: object) -> str:
    if response.status_code == 200:  # type: ignore[attr-defined]
        return "(matched)"
    try:
        detail = response.json().get("detail", "")  # type: ignore[attr-defined]
    except ValueError:
        detail = response.text  # type: ignore[attr-defined]
    return str(detail)[:140]


@pytest.mark.parametrize("case", list(UPLOADS))
def test_bad_uploads_get_a_clear_answer_never_a_500(
    case: str, client: TestClient, services: Services, outcomes: Outcomes
) -> None:
    name, content_type, make = UPLOADS[case]
    data = make()
    matched = client.post("/v1/match", files={"file": (name, data, content_type)})
    assert matched.status_code in (200, 413, 415, 422), matched.text
    submitted = client.post("/v1/images", files={"file": (name, data, content_type)})
    assert submitted.status_code in (202, 413, 415, 422), submitted.text
    job_outcome = f"upload {submitted.status_code} {_detail(submitted)}"
    if submitted.status_code == 202:
        services.make_worker().drain(max_jobs=5)
        job = services.ledger.get_job(submitted.json()["id"])
        assert job is not None and job.status in (JobStatus.COMPLETE, JobStatus.FAILED, JobStatus.SKIPPED)
        job_outcome = f"job {job.status.value}" + (f": {job.last_error[:90]}" if job.last_error else "")
    assert client.get("/healthz").status_code == 200
    outcomes.record("bad-input", case, f"match {matched.status_code} {_detail(matched)}; {job_outcome}")


def test_a_60_mb_body_is_refused_while_streaming(client: TestClient, outcomes: Outcomes) -> None:
    body = b"\xff\xd8\xff" + b"\0" * 60_000_000
    response = client.post("/v1/match", files={"file": ("big.jpg", body, "image/jpeg")})
    submitted = client.post("/v1/images", files={"file": ("big.jpg", body, "image/jpeg")})
    assert response.status_code == submitted.status_code == 413
    assert client.get("/healthz").status_code == 200
    outcomes.record("bad-input", "60 MB body", f"413 {_detail(response)} (match and upload)")


def test_deep_json_is_a_422_on_the_api_and_the_webhook(client: TestClient, outcomes: Outcomes) -> None:
    from imagematch.sources.catalog import sign_catalog_event

    deep = b'{"url": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    under_cap = b'{"url": ' + b"[" * 20_000 + b"]" * 20_000 + b"}"  # the API's JSON cap is 64 kB
    api = client.post("/v1/match", content=under_cap, headers={"Content-Type": "application/json"})
    headers = sign_catalog_event(CATALOG_SECRET, int(__import__("time").time()), deep)
    hook = client.post("/webhooks/catalog", content=deep, headers=headers)
    assert api.status_code == hook.status_code == 422
    assert client.get("/healthz").status_code == 200
    outcomes.record(
        "bad-input",
        "deep JSON (API 20,000 levels, webhook 100,000)",
        f"API 422 {_detail(api)}; signed webhook 422",
    )


@pytest.mark.parametrize(
    ("case", "content_type", "body", "expected"),
    [
        ("wrong content type (text/plain)", "text/plain", b"http://example.com/a.jpg", 415),
        ("JSON that is not an object", "application/json", b"[1, 2, 3]", 422),
        (
            "JSON with a non-http URL",
            "application/json",
            json.dumps({"url": "file:///etc/passwd"}).encode(),
            422,
        ),
        ("malformed multipart", "multipart/form-data; boundary=x", b"--x\r\nnonsense", 422),
    ],
)
def test_wrong_shapes_are_4xx(
    case: str, content_type: str, body: bytes, expected: int, client: TestClient, outcomes: Outcomes
) -> None:
    response = client.post("/v1/match", content=body, headers={"Content-Type": content_type})
    assert response.status_code == expected, response.text
    outcomes.record("bad-input", case, f"{response.status_code} {_detail(response)}")
