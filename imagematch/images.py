"""Decode untrusted image bytes into a plain RGB picture, or fail with a clear PermanentError."""

from __future__ import annotations

import hashlib
import io
import warnings
from functools import cache

from PIL import Image, ImageOps, UnidentifiedImageError

from imagematch.errors import PermanentError

__all__ = ["decode_image", "sha256_hex"]


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


def decode_image(data: bytes, *, max_bytes: int, max_pixels: int) -> Image.Image:
    """Return the first frame of ``data`` as an upright RGB image.

    Applies the EXIF orientation, flattens transparency onto white, converts CMYK/palette/grey to
    RGB. Raises :class:`PermanentError` if the bytes are empty, larger than ``max_bytes``, not a
    decodable image, or larger than ``max_pixels`` once decoded (decompression bombs included).
    """
    if not data:
        raise PermanentError("empty file: no image data")
    if len(data) > max_bytes:
        raise PermanentError(f"image is {len(data):,} bytes; the limit is {max_bytes:,}")
    _register_heif()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size  # read from the header, before any pixel is decoded
            if width * height > max_pixels:
                raise PermanentError(f"image is {width}×{height} pixels; the limit is {max_pixels:,} pixels")
            image.seek(0)  # animated GIF/WebP/APNG: the first frame
            image.load()
    except PermanentError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise PermanentError(f"image rejected as a decompression bomb: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise PermanentError("not a decodable image: unrecognised or unsupported format") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise PermanentError(f"not a decodable image: {exc}") from exc
    return _to_rgb(ImageOps.exif_transpose(image) or image)


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
