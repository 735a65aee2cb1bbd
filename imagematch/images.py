"""Decode untrusted image bytes into a plain RGB picture, or fail with a clear PermanentError."""

from __future__ import annotations

import contextlib
import hashlib
import io
import threading
import warnings
from dataclasses import dataclass, field
from functools import cache

from PIL import Image, ImageOps, UnidentifiedImageError

from imagematch.errors import PermanentError

__all__ = ["DecodeGate", "ImageLimits", "decode_image", "sha256_hex"]


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@cache
def _register_heif() -> None:
    # iPhones send HEIC; pillow-heif teaches Pillow to open it.
    try:
        import pillow_heif

        pillow_heif.register_heif_opener()
    except ImportError:  # optional at runtime; HEIC uploads then fail as "not an image"
        pass


# Bytes per pixel of the decoded image in each mode (what Pillow allocates to hold it).
_BYTES_PER_PIXEL = {"1": 1, "L": 1, "P": 1, "LA": 2, "PA": 2, "La": 2, "I;16": 2, "I;16B": 2, "I;16L": 2}
DEFAULT_MAX_DECODE_BYTES = 256_000_000
DEFAULT_MAX_SIDE = 2048  # far above what any embedder looks at (≤ 512 px); bounds the RGB copies
# JPEG decodes at 1/2, 1/4 or 1/8 scale while the shorter side stays at least this: what every
# user of a decoded photo needs (the models' input, whose shorter side is resized to 224–320 px
# by the shipped EfficientNets and OpenCLIP towers up to ViT-L/14@336; the 256 px thumbnail;
# quality signals, measured at ≤ 512 px). A 12 MP phone photo then decodes at 504×378: its
# preprocess, thumbnail and quality signals cost 5 ms instead of 11 (1008×756, the scale while
# this was 512), and the decode itself ~4 ms less (bench/phone_photos.py). Photos under 672 px
# (the whole dev set) decode in full, as before.
DRAFT_MIN_SIDE = 336
DEFAULT_DECODE_SLOTS = 4


class DecodeGate:
    """At most ``slots`` decodes at once in this process: with the per-image budget, that bounds
    decoding memory to about ``slots × max_decode_bytes`` however many requests arrive together."""

    def __init__(self, slots: int = DEFAULT_DECODE_SLOTS) -> None:
        self._slots = threading.BoundedSemaphore(slots)

    def __enter__(self) -> None:
        self._slots.acquire()

    def __exit__(self, *exc: object) -> None:
        self._slots.release()


@dataclass(frozen=True)
class ImageLimits:
    """How large an image may be, and how much memory decoding one may take."""

    max_bytes: int
    max_pixels: int
    max_decode_bytes: int = DEFAULT_MAX_DECODE_BYTES
    max_side: int = DEFAULT_MAX_SIDE
    gate: DecodeGate = field(default_factory=DecodeGate, compare=False, repr=False)

    def decode(self, data: bytes) -> Image.Image:
        """:func:`decode_image` within these limits."""
        return decode_image(
            data,
            max_bytes=self.max_bytes,
            max_pixels=self.max_pixels,
            max_decode_bytes=self.max_decode_bytes,
            max_side=self.max_side,
            gate=self.gate,
        )


def decode_image(
    data: bytes,
    *,
    max_bytes: int,
    max_pixels: int,
    max_decode_bytes: int = DEFAULT_MAX_DECODE_BYTES,
    max_side: int = DEFAULT_MAX_SIDE,
    gate: DecodeGate | None = None,
) -> Image.Image:
    """Return the first frame of ``data`` as an upright RGB image, at most ``max_side`` pixels
    on its longer side (larger images are scaled down while decoding: JPEG by DCT scaling).

    Applies the EXIF orientation, flattens transparency onto white, converts CMYK/palette/grey to
    RGB. Raises :class:`PermanentError` if the bytes are empty, larger than ``max_bytes``, not a
    decodable image, larger than ``max_pixels``, or would need more than ``max_decode_bytes`` of
    memory to decode (decompression bombs included). ``gate`` limits concurrent decodes.
    """
    if not data:
        raise PermanentError("empty file: no image data")
    if len(data) > max_bytes:
        raise PermanentError(f"image is {len(data):,} bytes; the limit is {max_bytes:,}")
    _register_heif()
    with gate or contextlib.nullcontext():
        return _decode(data, max_pixels=max_pixels, max_decode_bytes=max_decode_bytes, max_side=max_side)


def _decode(data: bytes, *, max_pixels: int, max_decode_bytes: int, max_side: int) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image: Image.Image = Image.open(io.BytesIO(data))
            width, height = image.size  # read from the header, before any pixel is decoded
            if width * height > max_pixels:
                raise PermanentError(f"image is {width}×{height} pixels; the limit is {max_pixels:,} pixels")
            image.seek(0)  # animated GIF/WebP/APNG: the first frame
            if image.format == "JPEG":
                image.draft(image.mode, _draft_size(width, height, max_side))
            needed = image.size[0] * image.size[1] * _BYTES_PER_PIXEL.get(image.mode, 4)
            if needed > max_decode_bytes:
                raise PermanentError(
                    f"image is {width}×{height} {image.mode} pixels: decoding it needs "
                    f"{needed / 1e6:,.0f} MB, the limit is {max_decode_bytes / 1e6:,.0f} MB"
                )
            image.load()
            image = _shrink(image, max_side)
    except PermanentError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise PermanentError(f"image rejected as a decompression bomb: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise PermanentError("not a decodable image: unrecognised or unsupported format") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise PermanentError(f"not a decodable image: {exc}") from exc
    return _to_rgb(ImageOps.exif_transpose(image) or image)


def _draft_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """The size to ask JPEG's DCT scaling for: the smallest scale (1/2, 1/4, 1/8) that keeps the
    shorter side ≥ ``DRAFT_MIN_SIDE``, or whose longer side is still ≥ ``max_side`` (the image is
    shrunk to ``max_side`` after anyway)."""
    for scale in (8, 4, 2):
        if min(width, height) // scale >= DRAFT_MIN_SIDE or max(width, height) // scale >= max_side:
            return max(1, width // scale), max(1, height // scale)
    return width, height


def _shrink(image: Image.Image, max_side: int) -> Image.Image:
    """Scale a decoded image down to ``max_side`` before any RGB/RGBA copy is made of it."""
    if max(image.size) <= max_side:
        return image
    exif = image.getexif()
    if image.mode == "P":  # palette indices cannot be averaged: go to RGBA at twice the target
        image.thumbnail((2 * max_side, 2 * max_side), Image.Resampling.NEAREST)
        image = image.convert("RGBA")
    elif image.mode.startswith("I;16"):
        image = image.convert("I")
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS, reducing_gap=2.0)
    if exif:
        image.info["exif"] = exif.tobytes()
    return image


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if image.mode.startswith("I;16") or image.mode in ("I", "F"):
        image = ImageOps.autocontrast(image.convert("I").point(lambda v: v / 256).convert("L"))
    return image.convert("RGB")
