"""Perceptual hash: 64 bits that survive resizing, recompression and small edits, at hash speed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import fft

from lookalike.descriptors.base import Descriptor, DescriptorConfig
from lookalike.errors import LookalikeError


def perceptual_hash(image: np.ndarray, hash_size: int = 8, highfreq_factor: int = 4) -> np.ndarray:
    """The DCT hash of an RGB ``[H, W, 3]`` uint8 image: ``(hash_size**2,)`` bool, row-major.

    Zauner's pHash as the ``imagehash`` package computes it (bit for bit): the luminance shrunk
    to ``hash_size * highfreq_factor`` pixels square (Lanczos), its 2-D DCT-II, and for each of the
    ``hash_size x hash_size`` lowest frequencies whether it exceeds their median.
    """
    side = hash_size * highfreq_factor
    gray = np.asarray(Image.fromarray(image).convert("L").resize((side, side), Image.Resampling.LANCZOS))
    spectrum = fft.dct(fft.dct(gray.astype(np.float64), axis=0), axis=1)[:hash_size, :hash_size]
    return (spectrum > np.median(spectrum)).ravel()


@dataclass(frozen=True)
class PhashConfig(DescriptorConfig):
    hash_size: int = 8  # bits per side: hash_size**2 bits in all (64)
    highfreq_factor: int = 4  # the image is shrunk to hash_size * highfreq_factor pixels square
    max_side: int = 256  # JPEGs are decoded at reduced size, at least this large


class PerceptualHash(Descriptor):
    """64-bit perceptual hash (DCT of a 32 x 32 thumbnail; Zauner, 2010), for exact and near-exact
    duplicates at hash speed: a cheap first pass over a large folder before a CNN.

    Output: ``(hash_size**2,)`` float32 of ``+-1/sqrt(dim)`` (bit set = positive), so the inner
    product is ``1 - 2 h / dim`` for the Hamming distance ``h``; collections store the bits in a
    faiss binary index (``BFlat``, 8 bytes per image).
    """

    name = "phash"
    Config = PhashConfig
    binary = True
    advice = "exact and near-exact copies (recompressed, resized, recoloured) at hash speed; not crops"

    def validate(self) -> None:
        c = self.config
        if c.hash_size < 2 or c.hash_size**2 % 8 or c.highfreq_factor < 1 or c.max_side < 8:
            raise LookalikeError(
                f"phash: need hash_size >= 2 with hash_size**2 a multiple of 8 (4, 8, 16...), highfreq_factor >= 1 "
                f"and max_side >= 8, got {c.hash_size}, {c.highfreq_factor}, {c.max_side}")
        if c.whitening:
            raise LookalikeError("phash: a whitening would turn its bits into floats; drop -s whitening")

    @property
    def raw_dim(self) -> int:
        return self.config.hash_size**2

    def compute(self, image: np.ndarray) -> np.ndarray:
        bits = perceptual_hash(image, self.config.hash_size, self.config.highfreq_factor)
        return np.where(bits, 1.0, -1.0).astype(np.float32) / np.float32(np.sqrt(self.raw_dim))
