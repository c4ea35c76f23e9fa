"""Decode any image file Pillow reads into an RGB ``uint8`` array, or say why it cannot.

Every mode is brought to 8-bit RGB: EXIF orientation is applied, CMYK, palette, YCbCr and
grayscale are converted, alpha is composited over white, 16-bit and 32-bit integer images are
rescaled (Pillow's own conversion would clip them), and animated files give their first frame.
Decompression bombs are refused from the header, before any pixel is decoded.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from lookalike.errors import ImageError

#: Pillow's own warning threshold: about 9,460 x 9,460 pixels.
DEFAULT_MAX_PIXELS = 89_478_485


class DecodedImage(NamedTuple):
    """Decoded pixels and the size of the image as stored in the file."""

    pixels: np.ndarray  # [H, W, 3] uint8, C-contiguous
    width: int  # original width, before any reduction to max_side
    height: int


def read_file(path: str | Path) -> bytes:
    """The bytes of ``path`` in one read, or :class:`ImageError` ``unreadable``: read once, they
    can be hashed and decoded (``load_image(path, data=...)``) without a second pass."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise ImageError(Path(path), "unreadable", exc.strerror or str(exc)) from None


def load_image(
    path: str | Path, *, max_side: int | None = None, cover: bool = False, max_pixels: int = DEFAULT_MAX_PIXELS,
    data: bytes | None = None,
) -> DecodedImage:
    """Decode ``path`` to RGB.

    Args:
        path: an image file.
        max_side: if set, shrink the image so that its longer side is at most this many pixels.
            For JPEG this decodes at reduced scale directly, which is several times faster.
        cover: with ``max_side``, only let JPEG decode at reduced scale, never below a *shorter*
            side of ``max_side``, and resample nothing: for a consumer that resizes the image
            itself (squashes it to a ``max_side`` square), so that it is resampled only once.
        max_pixels: refuse images with more pixels than this (decompression-bomb guard).
        data: the file's bytes, if already read (:func:`read_file`); else they are read here, at once.

    Returns:
        a :class:`DecodedImage` whose ``pixels`` are ``[H, W, 3]`` ``uint8``.

    Raises:
        ImageError: with reason ``empty``, ``not an image``, ``truncated``, ``too large`` or
            ``unreadable``.
    """
    path = Path(path)
    data = read_file(path) if data is None else data
    if not data:
        raise ImageError(path, "empty", "the file has 0 bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                return _decode(path, im, max_side, cover, max_pixels)
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(path, "not an image", "format not recognised") from None
    except Image.DecompressionBombError as exc:
        raise ImageError(path, "too large", str(exc)) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        message = str(exc)
        if "runcated" in message or isinstance(exc, EOFError) or "broken data stream" in message:
            raise ImageError(path, "truncated", message or "unexpected end of data") from None
        raise ImageError(path, "unreadable", message or type(exc).__name__) from None


def _decode(path: Path, im: Image.Image, max_side: int | None, cover: bool, max_pixels: int) -> DecodedImage:
    width, height = im.size
    if width * height > max_pixels:
        raise ImageError(
            path,
            "too large",
            f"{width}x{height} = {width * height:,} pixels exceeds the limit of {max_pixels:,}; "
            "raise it with --max-pixels if the file is trusted",
        )
    if getattr(im, "is_animated", False):
        im.seek(0)
    if max_side is not None and im.format == "JPEG":
        # draft() lets libjpeg decode at 1/2, 1/4 or 1/8 scale, never below the requested size.
        im.draft("RGB", _scaled(im.size, max_side, cover))
    im.load()
    im, transposed = _apply_exif_orientation(im)
    if transposed:
        width, height = height, width
    rgb = _to_rgb(im)
    if max_side is not None and not cover:
        rgb = _shrink(rgb, max_side)
    return DecodedImage(np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8)), width, height)


def shrink(pixels: np.ndarray, max_side: int | None) -> np.ndarray:
    """``pixels [H, W, 3]`` uint8 with the longer side shrunk to ``max_side`` as :func:`load_image`
    does (unchanged when already small enough): for a second consumer of one decoded image."""
    if max_side is None or max(pixels.shape[:2]) <= max_side:
        return pixels
    return np.ascontiguousarray(np.asarray(_shrink(Image.fromarray(pixels, "RGB"), max_side), dtype=np.uint8))


def _shrink(im: Image.Image, max_side: int) -> Image.Image:
    if max(im.size) <= max_side:
        return im
    return im.resize(_scaled(im.size, max_side), Image.Resampling.BILINEAR, reducing_gap=2.0)


def _scaled(size: tuple[int, int], max_side: int, cover: bool = False) -> tuple[int, int]:
    """``size`` shrunk (never enlarged), aspect kept, to a longer side of ``max_side``, or with
    ``cover`` to a shorter side of ``max_side``."""
    w, h = size
    scale = min(1.0, max_side / (min(w, h) if cover else max(w, h)))
    return max(1, round(w * scale)), max(1, round(h * scale))


def _apply_exif_orientation(im: Image.Image) -> tuple[Image.Image, bool]:
    """Rotate/flip as the EXIF orientation tag says; also return whether width and height swap."""
    try:
        orientation = im.getexif().get(0x0112, 1)
        if orientation == 1:  # upright: exif_transpose would only copy the pixels
            return im, False
        return ImageOps.exif_transpose(im), orientation in (5, 6, 7, 8)
    except Exception:  # noqa: BLE001 - a broken EXIF block must not lose the pixels
        return im, False


def _to_rgb(im: Image.Image) -> Image.Image:
    mode = im.mode
    if mode == "RGB":
        return im
    if mode in ("I", "F") or mode.startswith("I;16"):
        return Image.fromarray(_rescale_to_uint8(np.asarray(im), mode), "L").convert("RGB")
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        mode = im.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    # CMYK, YCbCr, LAB, HSV, L and 1 all have a direct conversion.
    return im.convert("RGB")


def _rescale_to_uint8(values: np.ndarray, mode: str) -> np.ndarray:
    """Map 16-bit, 32-bit integer or float pixels to 0..255 by their type's natural range."""
    values = values.astype(np.float64)
    top = float(values.max(initial=0.0))
    if mode.startswith("I;16") or (mode == "I" and top > 255.0):
        scale = 255.0 / 65535.0
    elif mode == "F" and top <= 1.0:
        scale = 255.0
    else:
        scale = 1.0
    return np.clip(np.rint(values * scale), 0, 255).astype(np.uint8)
