"""GIST: the spatial envelope of a scene (Oliva & Torralba, IJCV 2001)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image
from scipy import fft

from lookalike.descriptors.base import Descriptor, DescriptorConfig
from lookalike.errors import LookalikeError


@dataclass(frozen=True)
class GistConfig(DescriptorConfig):
    image_size: int = 256  # the image is resized (shorter side) and centre-cropped to a square
    orientations: tuple[int, ...] = (8, 8, 8, 8)  # Gabor orientations at each scale, fine to coarse
    blocks: int = 4  # responses are averaged over a blocks x blocks grid
    prefilter_fc: float = 4.0  # cut-off (cycles/image) of the local contrast normalisation
    padding: int = 32  # symmetric padding against wrap-around in the FFT filtering
    color: bool = False  # describe R, G and B separately (3x longer) instead of the luminance
    max_side: int = 512  # decode at most this large; GIST works at image_size anyway


class Gist(Descriptor):
    """GIST after Oliva & Torralba, "Modeling the shape of the scene", IJCV 2001.

    The image is resized and centre-cropped to a square, log-transformed, whitened and
    contrast-normalised (prefiltering), then filtered by a bank of Gabor-like filters in the
    frequency domain (4 scales x 8 orientations by default). The magnitude of each response is
    averaged over a 4 x 4 grid: 32 filters x 16 cells = 512 values for the luminance, 1,536 with
    ``color=True``. The vector is L2-normalised, so inner product ranks as Euclidean distance does.

    Layout: filter-major (scales fine to coarse, orientations in order), then cells row by row,
    then channels (R, G, B) when ``color=True``.
    """

    name = "gist"
    advice = "whole-scene layout: copies, crops of a few percent, near-duplicates"
    Config = GistConfig

    def validate(self) -> None:
        c = self.config
        if not 32 <= c.image_size <= 4096 or c.blocks < 1 or c.blocks > c.image_size or not c.orientations:
            raise LookalikeError(
                f"gist: need 32 <= image_size <= 4096, 1 <= blocks <= image_size and at least one scale; "
                f"got image_size={c.image_size}, blocks={c.blocks}, orientations={c.orientations}"
            )
        if not 1 <= min(c.orientations) <= max(c.orientations) <= 64 or c.padding < 0 or c.prefilter_fc <= 0:
            raise LookalikeError(f"gist: orientations={c.orientations} must be 1 to 64, padding={c.padding} >= 0, "
                                 f"prefilter_fc={c.prefilter_fc} > 0")

    @property
    def raw_dim(self) -> int:
        c = self.config
        return sum(c.orientations) * c.blocks * c.blocks * (3 if c.color else 1)

    def compute(self, image: np.ndarray) -> np.ndarray:
        c = self.config
        square = _resize_crop(image, c.image_size)  # [S, S, 3] float32 in 0..255
        channels = square.transpose(2, 0, 1) if c.color else square.mean(axis=2, keepdims=True).transpose(2, 0, 1)
        normalised = prefilter(channels, c.prefilter_fc)
        bank = gabor_bank(c.image_size + 2 * c.padding, c.orientations)
        features = gabor_energy(normalised, bank, c.padding, c.blocks)  # (C, F, B*B)
        vector = features.transpose(1, 2, 0).reshape(-1) if c.color else features.reshape(-1)
        vector = vector.astype(np.float32)
        return vector / max(float(np.linalg.norm(vector)), 1e-12)


def _resize_crop(image: np.ndarray, size: int) -> np.ndarray:
    h, w = image.shape[:2]
    scale = size / min(h, w)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    resized = Image.fromarray(image, "RGB").resize((nw, nh), Image.Resampling.BILINEAR)
    top, left = (nh - size) // 2, (nw - size) // 2
    return np.asarray(resized, dtype=np.float32)[top : top + size, left : left + size]


def prefilter(channels: np.ndarray, fc: float = 4.0, margin: int = 5) -> np.ndarray:
    """Whitening and local contrast normalisation of ``channels: (C, S, S)`` (GIST's prefilter).

    ``log(1 + I)`` is high-passed by a Gaussian of width ``fc / sqrt(log 2)`` cycles, then divided by
    the low-passed local standard deviation, which equalises contrast across the image.
    """
    c, s, _ = channels.shape
    padded = np.pad(np.log1p(channels), ((0, 0), (margin, margin), (margin, margin)), mode="symmetric")
    n = s + 2 * margin + (s % 2)
    padded = np.pad(padded, ((0, 0), (0, n - padded.shape[1]), (0, n - padded.shape[2])), mode="symmetric")
    freq = fft.fftfreq(n) * n
    sigma = fc / np.sqrt(np.log(2.0))
    gauss = np.exp(-(freq[:, None] ** 2 + freq[None, :] ** 2) / sigma**2).astype(np.float32)
    highpass = padded - fft.ifft2(fft.fft2(padded) * gauss).real
    energy = fft.ifft2(fft.fft2((highpass**2).mean(axis=0)) * gauss)
    local_std = np.sqrt(np.abs(energy))
    out = highpass / (0.2 + local_std)
    return out[:, margin : margin + s, margin : margin + s].astype(np.float32)


@lru_cache(maxsize=4)
def gabor_bank(n: int, orientations: tuple[int, ...]) -> np.ndarray:
    """Transfer functions ``(F, n, n)`` float32 of GIST's Gabor-like filters, in FFT order.

    Each filter is a Gaussian in log-polar frequency: centred at radial frequency
    ``0.3 / 1.85^scale`` (cycles per pixel), radial width set by 0.35, angular width by the number
    of orientations at that scale, which tile the half-plane of directions.
    """
    freq = fft.fftfreq(n)  # cycles per pixel
    fy, fx = np.meshgrid(freq, freq, indexing="ij")
    radius = np.hypot(fx, fy)
    angle = np.arctan2(fy, fx)
    filters = []
    for scale, count in enumerate(orientations):
        centre = 0.3 / 1.85**scale
        angular = 16.0 * count**2 / 32.0**2
        for k in range(count):
            turned = np.angle(np.exp(1j * (angle + np.pi * k / count)))  # wrap to (-pi, pi]
            filters.append(
                np.exp(-10.0 * 0.35 * (radius / centre - 1.0) ** 2 - 2.0 * angular * np.pi * turned**2)
            )
    return np.stack(filters).astype(np.float32)


def gabor_energy(channels: np.ndarray, bank: np.ndarray, padding: int, blocks: int) -> np.ndarray:
    """Mean response magnitude per filter and grid cell: ``(C, S, S) -> (C, F, blocks * blocks)``."""
    c, s, _ = channels.shape
    padded = np.pad(channels, ((0, 0), (padding, padding), (padding, padding)), mode="symmetric")
    spectrum = fft.fft2(padded.astype(np.complex64))  # (C, n, n)
    responses = np.abs(fft.ifft2(spectrum[:, None] * bank[None]))  # (C, F, n, n)
    responses = responses[..., padding : padding + s, padding : padding + s]
    edges = np.linspace(0, s, blocks + 1).astype(np.int64)
    sums = np.add.reduceat(np.add.reduceat(responses, edges[:-1], axis=2), edges[:-1], axis=3)
    areas = np.outer(np.diff(edges), np.diff(edges))
    return (sums / areas).reshape(c, bank.shape[0], blocks * blocks)
