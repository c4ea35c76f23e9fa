"""Strong augmentations for copy detection: the edits a copy goes through, drawn from a seeded generator.

SSCD (Pizzi et al., "A Self-Supervised Descriptor for Image Copy Detection", CVPR 2022) trains a
descriptor to match two edited copies of one image: crops, flips, rotations, colour changes,
blur, re-compression, and overlaid text and emoji. Here each edit is a Pillow or numpy operation
whose every random choice comes from a :class:`numpy.random.Generator`, so one seed gives the
same copies on any machine (tested), which the resumable training loop relies on.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont

#: characters of the overlaid text: letters, digits and the punctuation of captions and watermarks
_TEXT = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 .,!?@#&"


@dataclass(frozen=True)
class AugmentConfig:
    min_area: float = 0.1  # random resized crop keeps between this share of the image and all of it
    max_aspect: float = 4 / 3  # crops have an aspect ratio in [1 / max_aspect, max_aspect]
    flip: float = 0.5  # probability of a horizontal flip (copydays' mirror attack)
    rotate: float = 0.3  # probability of a rotation by up to max_angle degrees
    max_angle: float = 30.0
    colour: float = 0.8  # probability of jitter of brightness, contrast, saturation and hue
    strength: float = 0.4  # how far the jitter goes (factor 1 +- strength; hue +- strength / 4 turns)
    grayscale: float = 0.2  # probability of dropping the colour
    blur: float = 0.3  # probability of a Gaussian blur of up to 2 % of the side
    overlay: float = 0.4  # probability of overlaid text and emoji-like shapes
    jpeg: float = 0.5  # probability of re-encoding as JPEG of quality 5-95
    downscale: float = 0.2  # probability of shrinking by up to 8x and enlarging back (a thumbnail's loss)


def augment(image: Image.Image, side: int, rng: np.random.Generator,
            config: AugmentConfig = AugmentConfig()) -> np.ndarray:
    """One edited copy of ``image`` as ``(3, side, side)`` uint8: a random resized crop, then each
    other edit with its probability, in the order a copy would meet them (edits, then overlays,
    then re-compression)."""
    c = config
    image = random_resized_crop(image.convert("RGB"), side, rng, c.min_area, c.max_aspect)
    if rng.random() < c.flip:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if rng.random() < c.rotate:
        fill = tuple(int(v) for v in rng.integers(0, 256, 3))
        image = image.rotate(rng.uniform(-c.max_angle, c.max_angle), Image.Resampling.BILINEAR, fillcolor=fill)
    if rng.random() < c.colour:
        image = colour_jitter(image, rng, c.strength)
    if rng.random() < c.grayscale:
        image = image.convert("L").convert("RGB")
    if rng.random() < c.overlay:
        image = overlay(image, rng)
    if rng.random() < c.blur:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.1, 0.02 * side)))
    if rng.random() < c.downscale:
        small = max(8, int(side / rng.uniform(2, 8)))
        image = image.resize((small, small), Image.Resampling.BILINEAR).resize((side, side), Image.Resampling.BILINEAR)
    if rng.random() < c.jpeg:
        image = jpeg(image, int(rng.integers(5, 96)))
    return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1).copy()


def random_resized_crop(image: Image.Image, side: int, rng: np.random.Generator, min_area: float = 0.1,
                        max_aspect: float = 4 / 3) -> Image.Image:
    """A crop of ``min_area``..1 of the image's area, of aspect ratio within ``max_aspect`` (log-uniform),
    resized to a ``side`` square."""
    width, height = image.size
    area = width * height * rng.uniform(min_area, 1.0)
    aspect = np.exp(rng.uniform(-np.log(max_aspect), np.log(max_aspect)))
    w = int(round(min(width, np.sqrt(area * aspect))))
    h = int(round(min(height, np.sqrt(area / aspect))))
    x, y = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
    return image.resize((side, side), Image.Resampling.BILINEAR, box=(x, y, x + w, y + h))


def colour_jitter(image: Image.Image, rng: np.random.Generator, strength: float = 0.4) -> Image.Image:
    """Brightness, contrast and saturation each scaled by a factor in ``1 +- strength``, in a random
    order, then the hue turned by up to ``strength / 4`` of a full turn."""
    enhancers = [ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color]
    for i in rng.permutation(len(enhancers)):
        image = enhancers[i](image).enhance(rng.uniform(1 - strength, 1 + strength))
    hsv = np.asarray(image.convert("HSV")).copy()
    hsv[..., 0] = (hsv[..., 0].astype(np.int16) + int(rng.uniform(-strength / 4, strength / 4) * 256)) % 256
    return Image.fromarray(hsv, "HSV").convert("RGB")


def overlay(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Overlaid text (1-3 lines of random characters) and 1-3 emoji-like faces, in random colours,
    sizes and places, some of them translucent."""
    side = min(image.size)
    layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    for _ in range(int(rng.integers(0, 4))):
        size = int(side * rng.uniform(0.06, 0.2))
        text = "".join(rng.choice(list(_TEXT), size=int(rng.integers(3, 16))))
        draw.text((int(rng.integers(0, image.size[0])) - size, int(rng.integers(0, image.size[1])) - size // 2),
                  text, fill=_colour(rng), font=ImageFont.load_default(size=max(6, size)))
    for _ in range(int(rng.integers(1, 4))):
        radius = side * rng.uniform(0.05, 0.2)
        cx, cy = rng.uniform(0, image.size[0]), rng.uniform(0, image.size[1])
        draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=_colour(rng),
                     outline=(0, 0, 0, 255), width=max(1, int(radius / 10)))
        for dx in (-0.35, 0.35):  # the eyes
            draw.ellipse((cx + dx * radius - radius / 8, cy - radius / 3, cx + dx * radius + radius / 8,
                          cy - radius / 12), fill=(0, 0, 0, 255))
        draw.arc((cx - radius / 2, cy - radius / 3, cx + radius / 2, cy + radius / 2), 20, 160,
                 fill=(0, 0, 0, 255), width=max(1, int(radius / 10)))  # the mouth
    return Image.alpha_composite(image.convert("RGBA"), layer).convert("RGB")


def jpeg(image: Image.Image, quality: int) -> Image.Image:
    """``image`` re-encoded as a JPEG of ``quality`` (1-95) and decoded again."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def _colour(rng: np.random.Generator) -> tuple[int, int, int, int]:
    return (*(int(v) for v in rng.integers(0, 256, 3)), int(rng.integers(128, 256)))
