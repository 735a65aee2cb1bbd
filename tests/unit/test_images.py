from __future__ import annotations

import io

import pytest
from PIL import Image

from imagematch.errors import PermanentError
from imagematch.images import decode_image
from tests.conftest import image_bytes

LIMITS = {"max_bytes": 5_000_000, "max_pixels": 4_000_000}


def _encode(image: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def test_exif_orientation_is_applied() -> None:
    image = Image.new("RGB", (80, 40), (200, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    decoded = decode_image(_encode(image, "JPEG", exif=exif), **LIMITS)
    assert decoded.size == (40, 80)


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P", "L", "CMYK", "I;16"])
def test_any_mode_becomes_rgb(mode: str) -> None:
    image = Image.new("RGB", (20, 20), (10, 120, 200)).convert(mode)
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    decoded = decode_image(_encode(image, fmt), **LIMITS)
    assert decoded.mode == "RGB" and decoded.size == (20, 20)


def test_transparency_is_flattened_onto_white() -> None:
    image = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    decoded = decode_image(_encode(image, "PNG"), **LIMITS)
    assert decoded.getpixel((5, 5)) == (255, 255, 255)


def test_animated_gif_gives_first_frame() -> None:
    frames = [Image.new("RGB", (16, 16), c) for c in [(255, 0, 0), (0, 0, 255)]]
    data = _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50)
    decoded = decode_image(data, **LIMITS)
    red, _green, blue = decoded.getpixel((8, 8))
    assert red > 200 and blue < 50


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"<html>not an image</html>", "not a decodable image"),
        (image_bytes((1, 2, 3))[:40], "not a decodable image"),
    ],
)
def test_garbage_is_a_permanent_error(data: bytes, message: str) -> None:
    with pytest.raises(PermanentError, match=message):
        decode_image(data, **LIMITS)


def test_too_many_bytes_is_refused_before_decoding() -> None:
    with pytest.raises(PermanentError, match="limit is 10"):
        decode_image(image_bytes((1, 2, 3)), max_bytes=10, max_pixels=1000)


@pytest.mark.parametrize(
    ("mode", "size", "limits", "message"),
    [
        # A 6000×6000 single-colour PNG is a few KB on disk but 36 Mpx decoded: refused from the header.
        ("L", (6000, 6000), LIMITS, "pixels"),
        (
            "RGB",
            (1000, 1000),
            {"max_bytes": 10**8, "max_pixels": 10**8, "max_decode_bytes": 1_000_000},
            "decoding it needs 4 MB, the limit is 1 MB",
        ),
    ],
    ids=["decompression-bomb", "decode-memory"],
)
def test_an_image_over_the_decode_limits_is_refused(
    mode: str, size: tuple[int, int], limits: dict[str, int], message: str
) -> None:
    data = _encode(Image.new(mode, size), "PNG")
    assert len(data) < 200_000
    with pytest.raises(PermanentError, match=message):
        decode_image(data, **limits)


def test_a_large_jpeg_is_decoded_scaled_down() -> None:
    photo = Image.new("RGB", (4000, 3000), (30, 160, 90))
    decoded = decode_image(
        _encode(photo, "JPEG", quality=70), max_bytes=10**8, max_pixels=10**8, max_side=1000
    )
    assert max(decoded.size) <= 1000 and decoded.size[0] / decoded.size[1] == pytest.approx(4 / 3, rel=0.01)
    assert decoded.getpixel((10, 10)) == pytest.approx((30, 160, 90), abs=3)


def test_a_large_palette_png_is_decoded_scaled_down() -> None:
    image = Image.new("P", (3000, 1000), 0)
    image.putpalette([200, 10, 10] * 256)
    decoded = decode_image(_encode(image, "PNG"), max_bytes=10**8, max_pixels=10**8, max_side=600)
    assert decoded.size == (600, 200) and decoded.getpixel((5, 5)) == (200, 10, 10)
