"""Local-feature extractors by name: ``sift`` (OpenCV) and ``delf`` (deep, from the CNN).

Each extractor maps an RGB image ``[H, W, 3]`` uint8 to :class:`LocalFeatures` whose keypoints
are in the pixel coordinates of *that* image (whatever resolution the extractor works at inside),
so that spatial verification and drawn matches never need to know how it was computed.

Extractors follow the descriptors' conventions (a frozen config dataclass, ``spec()``, a
``max_side`` for decoding, ``__init__`` that only stores the config), so that the parallel
:func:`lookalike.pipelines.extract.extract` runs them in its worker processes unchanged:
``extract(create_local("sift"), paths)`` yields ``LocalFeatures`` per file.
"""

from __future__ import annotations

import abc
import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from lookalike.descriptors.local.sift import LocalFeatures, SiftConfig, extract_sift
from lookalike.entries import configure, load_entry
from lookalike.errors import LookalikeError

#: name -> "module:Class"
_ENTRIES: dict[str, str] = {
    "sift": "lookalike.descriptors.local.registry:Sift",
    "delf": "lookalike.descriptors.cnn.local:Delf",
}


class LocalExtractor(abc.ABC):
    """Base of the local-feature extractors: ``__call__(image) -> LocalFeatures``."""

    name: ClassVar[str]
    Config: ClassVar[type]
    trained: bool = True  # False while an extractor that learns (DELF's PCA) has no model yet

    def __init__(self, config: Any = None, /, **overrides: Any) -> None:
        self.config = configure(self.name, self.Config, config, overrides)
        self.validate()

    def validate(self) -> None:
        """Raise :class:`LookalikeError` if the config is unusable."""

    @property
    def max_side(self) -> int | None:
        """Longest image side the extractor needs; images are decoded at most this large."""
        return getattr(self.config, "max_side", None)

    @property
    @abc.abstractmethod
    def dim(self) -> int:
        """Length of each local descriptor."""

    @abc.abstractmethod
    def compute(self, image: np.ndarray) -> LocalFeatures:
        """Local features of one checked ``[H, W, 3]`` uint8 image."""

    def __call__(self, image: np.ndarray) -> LocalFeatures:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise LookalikeError(
                f"{self.name}: expected an RGB image [H, W, 3] uint8, got {image.shape} {image.dtype}")
        return self.compute(image)

    def spec(self) -> dict[str, Any]:
        """Name, class and config as JSON data: enough to rebuild the same extractor anywhere."""
        config = {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self.config).items()}
        return {"name": self.name, "class": f"{type(self).__module__}:{type(self).__qualname__}", "config": config}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config})"


@dataclass(frozen=True)
class SiftOptions(SiftConfig):
    max_keypoints: int = 1000  # the strongest detections; verification cost grows with its square


class Sift(LocalExtractor):
    """SIFT keypoints (Lowe, IJCV 2004), RootSIFT descriptors, computed on the image shrunk to
    ``max_side`` and returned in the input image's coordinates."""

    name = "sift"
    Config = SiftOptions

    @property
    def dim(self) -> int:
        return 128

    def compute(self, image: np.ndarray) -> LocalFeatures:
        height, width = image.shape[:2]
        scale = min(1.0, self.config.max_side / max(height, width))
        small = image
        if scale < 1.0:
            from PIL import Image

            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            small = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0))
        features = extract_sift(small, dataclasses.replace(self.config, max_side=max(small.shape[:2])))
        keypoints = features.keypoints.copy()
        keypoints[:, :2] = (keypoints[:, :2] + 0.5) * (width / small.shape[1]) - 0.5  # pixel centres
        keypoints[:, 2] *= width / small.shape[1]
        return LocalFeatures(keypoints, features.descriptors, (width, height))


def available_local() -> list[str]:
    """Names of the local-feature extractors."""
    return sorted(_ENTRIES)


def local_class(name: str) -> type[LocalExtractor]:
    """The extractor class registered as ``name``; an unknown name lists the valid ones."""
    return load_entry(_ENTRIES, name, "local features")


def create_local(name: str, config: Any = None, /, **overrides: Any) -> LocalExtractor:
    """Build local-feature extractor ``name`` (``sift`` or ``delf``) with options ``overrides``."""
    return local_class(name)(config, **overrides)


def local_from_spec(spec: dict[str, Any]) -> LocalExtractor:
    """Rebuild an extractor from :meth:`LocalExtractor.spec` output."""
    cls = local_class(spec["name"])
    config = {k: tuple(v) if isinstance(v, list) else v for k, v in spec["config"].items()}
    return cls(cls.Config(**config))
