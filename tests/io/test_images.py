"""Decoding: every mode to RGB, EXIF orientation, animation, and each kind of bad file."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lookalike.errors import ImageError
from lookalike.io.images import load_image


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_png(path: Path, width: int, height: int, bit_depth: int, color_type: int, raw: bytes) -> Path:
    """A PNG written by hand, for what Pillow cannot write (16-bit RGB, lying headers)."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
                     + _png_chunk(b"IDAT", zlib.compress(raw)) + _png_chunk(b"IEND", b""))
    return path


def test_rgb_jpeg(tmp_path):
    Image.new("RGB", (40, 30), (200, 10, 10)).save(tmp_path / "a.jpg")
    decoded = load_image(tmp_path / "a.jpg")
    assert decoded.pixels.shape == (30, 40, 3) and decoded.pixels.dtype == np.uint8
    assert (decoded.width, decoded.height) == (40, 30)
    assert abs(int(decoded.pixels[15, 20, 0]) - 200) < 8


@pytest.mark.parametrize("mode", ["L", "1", "P", "CMYK", "YCbCr", "LA", "RGBA", "I", "F"])
def test_every_mode_becomes_rgb(tmp_path, mode):
    image = Image.new("RGB", (16, 12), (0, 0, 255)).convert(mode)
    path = tmp_path / ("x.tif" if mode in ("I", "F", "YCbCr", "CMYK") else "x.png")
    if mode == "YCbCr":
        path = tmp_path / "x.jpg"
    image.save(path)
    pixels = load_image(path).pixels
    assert pixels.shape == (12, 16, 3) and pixels.dtype == np.uint8


def test_cmyk_colours_are_converted(tmp_path):
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(tmp_path / "c.jpg")  # pure red in CMYK
    r, g, b = load_image(tmp_path / "c.jpg").pixels[4, 4].astype(int)
    assert r > 200 and g < 60 and b < 60


def test_sixteen_bit_gray_is_rescaled_not_clipped(tmp_path):
    values = np.array([[0, 32896, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "g16.png")
    pixels = load_image(tmp_path / "g16.png").pixels
    assert pixels[0, :, 0].tolist() == [0, 128, 255]


def test_sixteen_bit_rgb(tmp_path):
    rgb16 = np.array([[[65535, 0, 32896]]], dtype=">u2")
    write_png(tmp_path / "rgb16.png", 1, 1, 16, 2, b"\x00" + rgb16.tobytes())
    r, g, b = load_image(tmp_path / "rgb16.png").pixels[0, 0].astype(int)
    assert r == 255 and g == 0 and abs(b - 128) <= 1


def test_transparency_is_composited_on_white(tmp_path):
    Image.new("RGBA", (4, 4), (255, 0, 0, 0)).save(tmp_path / "t.png")
    assert load_image(tmp_path / "t.png").pixels[0, 0].tolist() == [255, 255, 255]
    palette = Image.new("P", (4, 4), 0)
    palette.putpalette([0, 0, 0] * 256)
    palette.info["transparency"] = 0
    palette.save(tmp_path / "p.png", transparency=0)
    assert load_image(tmp_path / "p.png").pixels[0, 0].tolist() == [255, 255, 255]


def test_exif_orientation_is_applied(tmp_path):
    image = Image.new("RGB", (40, 20), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 20, 20))  # left half red
    exif = Image.Exif()
    exif[0x0112] = 6  # stored image must be rotated 90 degrees clockwise for display
    image.save(tmp_path / "r.jpg", exif=exif, quality=95)
    decoded = load_image(tmp_path / "r.jpg")
    assert decoded.pixels.shape == (40, 20, 3)
    assert (decoded.width, decoded.height) == (20, 40)
    top, bottom = decoded.pixels[2, 10], decoded.pixels[37, 10]
    assert top[0] > 200 and bottom[2] > 200  # the red left half is now on top


def test_animated_gif_gives_first_frame(tmp_path):
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:], duration=50)
    r, g, b = load_image(tmp_path / "a.gif").pixels[4, 4].astype(int)
    assert r > 200 and b < 50


def test_max_side_shrinks_keeping_aspect(tmp_path):
    Image.new("RGB", (1000, 500), (10, 200, 10)).save(tmp_path / "big.jpg")
    decoded = load_image(tmp_path / "big.jpg", max_side=100)
    assert decoded.pixels.shape == (50, 100, 3)
    assert (decoded.width, decoded.height) == (1000, 500)


def test_cover_decodes_jpeg_at_reduced_scale_down_to_the_shorter_side_only(tmp_path):
    Image.new("RGB", (1000, 500), (10, 200, 10)).save(tmp_path / "big.jpg")
    Image.new("RGB", (1000, 500), (10, 200, 10)).save(tmp_path / "big.png")
    assert load_image(tmp_path / "big.jpg", max_side=100, cover=True).pixels.shape == (125, 250, 3)  # 1/4
    assert load_image(tmp_path / "big.jpg", max_side=130, cover=True).pixels.shape == (250, 500, 3)  # 1/2
    assert load_image(tmp_path / "big.png", max_side=100, cover=True).pixels.shape == (500, 1000, 3)


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_text("hello, I am text"), "not an image"),
        (lambda p: p.write_bytes(_jpeg_bytes()[:600]), "truncated"),
        (lambda p: write_png(p, 60000, 60000, 8, 0, b""), "too large"),
    ],
    ids=["empty", "text", "truncated", "bomb"],
)
def test_bad_files_raise_image_error(tmp_path, make, reason):
    path = tmp_path / "bad.jpg"
    make(path)
    with pytest.raises(ImageError) as info:
        load_image(path)
    assert info.value.reason == reason
    assert str(path) in str(info.value)


def test_pixel_limit_is_configurable(tmp_path):
    Image.new("RGB", (100, 100)).save(tmp_path / "a.png")
    with pytest.raises(ImageError, match="exceeds the limit of 1,000"):
        load_image(tmp_path / "a.png", max_pixels=1000)


def test_missing_file_is_unreadable(tmp_path):
    with pytest.raises(ImageError) as info:
        load_image(tmp_path / "nope.jpg")
    assert info.value.reason == "unreadable"


def _jpeg_bytes() -> bytes:
    import io

    from tests.conftest import photo

    buffer = io.BytesIO()
    photo(1, (200, 150)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()
