"""Colour histograms (Swain & Ballard, "Color indexing", IJCV 1991)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from lookalike.descriptors.base import Descriptor, DescriptorConfig
from lookalike.errors import LookalikeError
from lookalike.postprocess.kernel_map import homogeneous_kernel_map, inverse_kernel_map

SPACES = ("hsv", "lab", "rgb")
COMPARISONS = ("chi2", "intersection", "hellinger")
MAX_BINS_PER_CHANNEL = 256  # one per 8-bit level
MAX_CELLS = 32_768  # 32x32x32: finer histograms are mostly empty and only cost memory


@dataclass(frozen=True)
class ColorHistConfig(DescriptorConfig):
    space: str = "hsv"  # colour space: hsv, lab or rgb
    bins: tuple[int, ...] = (8, 4, 4)  # bins per channel, joint histogram of prod(bins) cells
    compare: str = "chi2"  # chi2 or intersection (kernel map), or hellinger (square root)
    map_order: int = 1  # terms of the kernel map: 2 * map_order + 1 features per bin
    max_side: int = 256  # images are shrunk to this longer side first; colours barely change


class ColorHistogram(Descriptor):
    """Joint colour histogram, L1-normalised, embedded so that inner product = similarity.

    Swain & Ballard, IJCV 1991; comparisons after Puzicha et al. (chi-square, ICCV 1999). With
    ``compare="chi2"`` or ``"intersection"`` the histogram ``h`` goes through the homogeneous kernel
    map (Vedaldi & Zisserman, PAMI 2012), so faiss inner-product search ranks as chi-square distance
    or histogram intersection would, to within the map's approximation (measured in
    ``docs/benchmarks.md``). With ``"hellinger"`` the vector is ``sqrt(h)``, exact.

    Output: ``(prod(bins) * (2 * map_order + 1),)`` float32, or ``(prod(bins),)`` for hellinger.
    The histogram itself is recovered exactly by :meth:`histogram_from_vector`, which is what EMD
    re-scoring uses (:mod:`lookalike.rerank.emd`).
    """

    name = "color-hist"
    advice = "copies and near-duplicates by colour, fast; re-rank with --rerank emd"
    Config = ColorHistConfig

    def validate(self) -> None:
        c = self.config
        if c.space not in SPACES:
            raise LookalikeError(f"color-hist: space={c.space!r}; choose one of {', '.join(SPACES)}")
        if c.compare not in COMPARISONS:
            raise LookalikeError(
                f"color-hist: compare={c.compare!r}; choose one of {', '.join(COMPARISONS)}"
            )
        if len(c.bins) != 3 or min(c.bins) < 1 or max(c.bins) > MAX_BINS_PER_CHANNEL:
            raise LookalikeError(f"color-hist: bins={','.join(map(str, c.bins))} should be three integers "
                                 f"from 1 to {MAX_BINS_PER_CHANNEL}, e.g. -s bins=8,4,4")
        if int(np.prod(c.bins)) > MAX_CELLS:
            raise LookalikeError(f"color-hist: bins={','.join(map(str, c.bins))} make {int(np.prod(c.bins)):,} "
                                 f"cells, more than {MAX_CELLS:,}; use fewer bins, e.g. -s bins=16,8,8")
        if not 0 <= c.map_order <= 8 or c.max_side < 8:
            raise LookalikeError(f"color-hist: map_order={c.map_order} should be 0 to 8 and "
                                 f"max_side={c.max_side} >= 8")

    @property
    def n_bins(self) -> int:
        return int(np.prod(self.config.bins))

    @property
    def raw_dim(self) -> int:
        if self.config.compare == "hellinger":
            return self.n_bins
        return self.n_bins * (2 * self.config.map_order + 1)

    def histogram(self, image: np.ndarray) -> np.ndarray:
        """The L1-normalised joint histogram ``(prod(bins),)`` float32 of an RGB uint8 image."""
        codes = to_bytes(image, self.config.space)  # (P, 3) uint8 colour coordinates
        bins = np.asarray(self.config.bins, dtype=np.uint32)
        cells = (codes * bins) >> 8  # floor(code / 256 * bins), in integers
        joint = (cells[:, 0] * bins[1] + cells[:, 1]) * bins[2] + cells[:, 2]
        counts = np.bincount(joint, minlength=self.n_bins).astype(np.float32)
        return counts / max(1.0, float(counts.sum()))

    def compute(self, image: np.ndarray) -> np.ndarray:
        hist = self.histogram(image)
        c = self.config
        if c.compare == "hellinger":
            return np.sqrt(hist)
        return homogeneous_kernel_map(hist[None], c.compare, c.map_order)[0]

    def histogram_from_vector(self, vectors: np.ndarray) -> np.ndarray:
        """Invert :meth:`compute`: ``(N, dim)`` vectors -> ``(N, prod(bins))`` histograms."""
        c = self.config
        if c.compare == "hellinger":
            return np.square(vectors, dtype=np.float32)
        return inverse_kernel_map(vectors, c.compare, c.map_order)

    def bin_centers(self) -> np.ndarray:
        """Coordinates ``(prod(bins), 3)`` of the bin centres, for EMD's ground distance.

        HSV centres are placed on the HSV cone ``(s v cos h, s v sin h, v)`` so that hue wraps
        around and hue differences matter less for dark or grey colours; Lab and RGB are used as is.
        """
        axes = [(np.arange(b) + 0.5) / b for b in self.config.bins]
        grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
        if self.config.space == "hsv":
            h, s, v = grid.T
            angle = 2 * np.pi * h
            return np.stack([s * v * np.cos(angle), s * v * np.sin(angle), v], axis=1)
        return grid


def to_bytes(image: np.ndarray, space: str) -> np.ndarray:
    """Pixels ``[H, W, 3]`` uint8 -> ``(H*W, 3)`` colour coordinates quantised to 0..255 (uint32).

    HSV comes from Pillow (hue wraps over 0..255). Lab is scaled from L in [0, 100] and a, b in
    [-128, 128), which holds every sRGB colour.
    """
    if space == "rgb":
        codes = image.reshape(-1, 3)
    elif space == "hsv":
        codes = np.asarray(Image.fromarray(image, "RGB").convert("HSV")).reshape(-1, 3)
    else:
        lab = srgb_to_lab(image.reshape(-1, 3))
        codes = np.clip((lab + [0.0, 128.0, 128.0]) * [2.55, 1.0, 1.0], 0, 255)
    return codes.astype(np.uint32)


_codes = np.arange(256, dtype=np.float64) / 255.0
_SRGB_TO_LINEAR = np.where(_codes <= 0.04045, _codes / 12.92, ((_codes + 0.055) / 1.055) ** 2.4).astype(
    np.float32
)


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB ``(N, 3)`` uint8 -> CIE L*a*b* ``(N, 3)`` float32, D65 white (IEC 61966-2-1, CIE 1976)."""
    linear = _SRGB_TO_LINEAR[rgb.T]  # (3, N): channel-major keeps the 3x3 product fast
    xyz = _RGB_TO_XYZ @ linear / _WHITE_D65
    eps = np.float32((6 / 29) ** 3)
    f = np.where(xyz > eps, np.power(np.maximum(xyz, eps), np.float32(1 / 3)),
                 xyz / np.float32(3 * (6 / 29) ** 2) + np.float32(4 / 29))
    return np.stack([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])], axis=1)


_RGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750],
                        [0.0193339, 0.1191920, 0.9503041]], dtype=np.float32)
_WHITE_D65 = np.array([[0.95047], [1.0], [1.08883]], dtype=np.float32)
