"""The descriptor interface: a typed config, a dimension and ``image -> vector``.

Every descriptor can be followed by a learned PCA-whitening (the ``whitening`` option that all
configs share), applied by :meth:`Descriptor.finish`.
"""

from __future__ import annotations

import abc
import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from lookalike.entries import configure
from lookalike.errors import LookalikeError
from lookalike.postprocess.whitening import PCAWhitening


@dataclass(frozen=True)
class DescriptorConfig:
    whitening: str = ""  # learned PCA-whitening (.npz) from `lookalike train --whiten`; empty = none


class Descriptor(abc.ABC):
    """Maps an RGB image ``[H, W, 3]`` uint8 to a float32 vector ``(dim,)``.

    Subclasses set ``name`` (the registry key), ``Config`` (a frozen dataclass derived from
    :class:`DescriptorConfig` whose fields all have defaults, one comment per field) and
    implement :meth:`compute` and :attr:`raw_dim`.
    ``__init__`` only stores the config, so that a descriptor pickles cheaply into workers.
    """

    name: ClassVar[str]
    Config: ClassVar[type]
    trained: bool = True  # False until a descriptor that learns (a vocabulary) has been fitted
    sparse: bool = False  # mostly zeros: search it with an inverted file
    binary: bool = False  # values are +-1/sqrt(dim): a collection stores them as bits (BFlat)
    #: compute squashes the image to max_side x max_side (aspect not kept), so it is decoded only
    #: down to a shorter side of max_side: shrinking the longer side would lose rows or columns
    squashes: bool = False
    #: config options that name a file the vectors depend on; a collection keeps a copy of each
    file_options: ClassVar[tuple[str, ...]] = ("whitening",)
    #: when to choose this descriptor, in one line (``lookalike descriptors`` prints it)
    advice: ClassVar[str] = ""

    def __init__(self, config: Any = None, /, **overrides: Any) -> None:
        self.config = configure(self.name, self.Config, config, overrides)
        self.validate()

    def validate(self) -> None:
        """Raise :class:`LookalikeError` if the config is unusable. Override to check values."""

    @property
    @abc.abstractmethod
    def raw_dim(self) -> int:
        """Length of the vector :meth:`compute` returns, before any whitening."""

    @property
    def whitening(self) -> PCAWhitening | None:
        path = self.config.whitening
        return PCAWhitening.load(path) if path else None

    @property
    def dim(self) -> int:
        """Length of the output vector."""
        whitening = self.whitening
        return self.raw_dim if whitening is None else whitening.dim

    @property
    def max_side(self) -> int | None:
        """Longest image side the descriptor needs; images are decoded at most this large."""
        return getattr(self.config, "max_side", None)

    @abc.abstractmethod
    def compute(self, image: np.ndarray) -> np.ndarray:
        """Describe one checked image ``[H, W, 3]`` uint8 as a ``(raw_dim,)`` float32 vector."""

    def finish(self, vectors: np.ndarray) -> np.ndarray:
        """Apply the whitening, if any, to ``(N, raw_dim)`` vectors."""
        whitening = self.whitening
        return vectors if whitening is None else whitening.transform(vectors)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise LookalikeError(
                f"{self.name}: expected an RGB image [H, W, 3] uint8, got {image.shape} {image.dtype}")
        vector = self.finish(self.compute(image)[None])[0]
        assert vector.shape == (self.dim,) and vector.dtype == np.float32, vector.shape
        return vector

    def spec(self) -> dict[str, Any]:
        """Name and config as plain JSON data: enough to rebuild an identical descriptor."""
        return {"name": self.name, "config": _jsonable(dataclasses.asdict(self.config))}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config})"


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    return value


def parse_overrides(config_type: type, items: list[str]) -> dict[str, Any]:
    """Turn ``["bins=8,4,4", "space=lab"]`` into typed keyword arguments for ``config_type``.

    Values are converted with the dataclass field types: ``int``, ``float``, ``bool``, ``str``
    and tuples of these (comma-separated).
    """
    hints = typing.get_type_hints(config_type)
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep:
            raise LookalikeError(f"option {item!r} must look like key=value")
        if key not in hints:
            raise LookalikeError(
                f"unknown option {key!r}; valid: {', '.join(sorted(hints))}"
            )
        out[key] = _convert(hints[key], text.strip(), key)
    return out


def _convert(kind: Any, text: str, key: str) -> Any:
    origin = typing.get_origin(kind)
    if origin is tuple:
        inner = typing.get_args(kind)[0]
        return tuple(_convert(inner, part.strip(), key) for part in text.split(","))
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        if text.lower() in ("none", ""):
            return None
        return _convert(args[0], text, key)
    try:
        if kind is bool:
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        return kind(text)
    except ValueError:
        raise LookalikeError(f"option {key}={text!r} is not a valid {kind.__name__}") from None
