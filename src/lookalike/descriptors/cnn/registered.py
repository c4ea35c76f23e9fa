"""Registered deep global descriptors: a pretrained CNN's feature map, pooled.

``cnn-fc`` is the off-the-shelf baseline: the classifier's penultimate vector on a 224 x 224
squashed image. The others keep the aspect ratio at full resolution (up to ``max_side``) and pool
the last feature map with :mod:`lookalike.descriptors.cnn.pooling`: ``mac``, ``spoc``, ``crow``,
``rmac``, ``gem`` and ``netvlad``. With several ``scales`` the image is described at each and the
L2-normalised vectors are averaged, then normalised again.

Like every descriptor they run in the extraction's worker processes, each with its share of the
cores as threads: one image at a time through a single-threaded forward pass per worker is 1.5x
faster on two cores than batches through one two-threaded pass (``docs/benchmarks.md``).

On the ONNX engine the feature map is pooled in numpy (:meth:`CnnDescriptor.pool_array`), and
this module imports torch only where a descriptor needs it (the torch engine, NetVLAD,
fine-tuned weights): searching a collection with the default descriptor never loads torch.
"""

from __future__ import annotations

import abc
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lookalike.descriptors.base import Descriptor, DescriptorConfig
from lookalike.descriptors.cnn import numpy_pooling
from lookalike.descriptors.cnn.catalog import known_channels
from lookalike.descriptors.cnn.engine import load_engine
from lookalike.descriptors.cnn.inputs import check_input_options, network_input, scaled_inputs
from lookalike.errors import LookalikeError
from lookalike.norms import l2_normalise
from lookalike.sampling import evenly_spaced

if TYPE_CHECKING:
    import torch

    from lookalike.descriptors.cnn import pooling


@dataclass(frozen=True)
class CnnConfig(DescriptorConfig):
    backbone: str = "efficientnet-lite0"  # or efficientnet-lite1/-lite2, timm:<model> (with weights)
    weights: str = ""  # a state-dict file (torch.save); empty = the backbone's packaged ImageNet weights
    max_side: int = 1024  # longer side at most this (aspect ratio kept; smaller images are not enlarged)
    scales: tuple[float, ...] = (1.0,)  # multi-scale, e.g. 1,0.7071,0.5: the vectors are averaged
    engine: str = "auto"  # onnx, torch, or auto (onnx where onnxruntime is installed)
    threads: int = 0  # threads of the forward pass; 0 = this process's share of the cores


class CnnDescriptor(Descriptor):
    """Base of the deep descriptors; subclasses implement :meth:`pool`."""

    Config = CnnConfig
    file_options = ("whitening", "weights")

    def validate(self) -> None:
        c = self.config
        check_input_options(self.name, c.engine, c.max_side, c.scales)
        if c.threads < 0:
            raise LookalikeError(f"{self.name}: need threads >= 0, got {c.threads}")
        if c.weights and not Path(c.weights).is_file():
            raise LookalikeError(f"{self.name}: weights {c.weights} not found")

    @property
    def engine(self):
        return _engine(self.config)

    @property
    def raw_dim(self) -> int:
        return _channels(self.config)

    @abc.abstractmethod
    def pool(self, features: torch.Tensor) -> torch.Tensor:
        """``[B, C, H, W]`` feature maps -> ``[B, raw_dim]`` (not normalised)."""

    def pool_array(self, features: np.ndarray) -> np.ndarray:
        """:meth:`pool` on a numpy feature map, ``[B, C, H, W]`` -> ``[B, raw_dim]`` float32: how the
        ONNX engine pools. Subclasses compute it in numpy; this fallback runs :meth:`pool` in torch."""
        import torch

        return self.pool(torch.from_numpy(features)).numpy()

    # ---- describing ---------------------------------------------------------------------
    def prepare(self, image: np.ndarray) -> tuple[np.ndarray, ...]:
        """The image at each scale, ``[3, H, W]`` float32 pixels, the longer side at most ``max_side``."""
        return scaled_inputs(image, self.config.max_side, self.config.scales)

    def feature_map(self, pixels: np.ndarray) -> torch.Tensor:
        """The network's last feature map ``[C, h, w]`` of one prepared ``[3, H, W]`` image."""
        import torch

        return torch.from_numpy(self.engine(pixels[None])[0])

    def views(self, image: np.ndarray) -> np.ndarray:
        """``[V, raw_dim]`` float32: each prepared input (each scale, each mirror image) pooled and
        L2-normalised. The descriptor is their normalised sum; the joint space's training draws single
        views as augmentation (``JointConfig.augment``)."""
        engine = self.engine
        if engine.name == "onnx":  # numpy from end to end: no torch in the process
            return np.concatenate([l2_normalise(self.pool_array(engine(pixels[None])))
                                   for pixels in self.prepare(image)]).astype(np.float32)
        import torch

        pooled = [torch.nn.functional.normalize(self.pool(self.feature_map(pixels)[None]), dim=1)
                  for pixels in self.prepare(image)]
        return torch.cat(pooled).numpy().astype(np.float32)

    def compute(self, image: np.ndarray) -> np.ndarray:
        return l2_normalise(self.views(image).sum(axis=0)).astype(np.float32)


def _engine(config: CnnConfig):
    weights = str(Path(config.weights).resolve()) if config.weights else ""
    return load_engine(config.backbone, weights, config.engine, config.threads)


def _channels(config: CnnConfig) -> int:
    known = known_channels(config.backbone, config.weights)
    if known is not None:
        return known
    from lookalike.descriptors.cnn.backbone import load_backbone

    return load_backbone(config.backbone, config.weights).channels


def _pooling():
    """The torch pooling functions, imported on first use."""
    from lookalike.descriptors.cnn import pooling

    return pooling


@dataclass(frozen=True)
class FcConfig(CnnConfig):
    max_side: int = 224  # images are squashed to max_side x max_side, the classifier's input


class OffTheShelf(CnnDescriptor):
    """Off-the-shelf CNN features (Razavian et al., CVPR-W 2014; Babenko et al., ECCV 2014): the
    vector the ImageNet classifier reads, the average-pooled last feature map, on a squashed image."""

    name = "cnn-fc"
    advice = "what the image shows (category), not this exact object"
    Config = FcConfig
    squashes = True

    def prepare(self, image: np.ndarray) -> tuple[np.ndarray, ...]:
        side = self.config.max_side
        return tuple(network_input(image, side * s, side * s) for s in self.config.scales)

    def pool(self, features: torch.Tensor) -> torch.Tensor:
        return features.mean(dim=(2, 3))

    def pool_array(self, features: np.ndarray) -> np.ndarray:
        return numpy_pooling.average(features)


class Mac(CnnDescriptor):
    """MAC: the maximum of each channel (Tolias et al., ICLR 2016)."""

    name = "mac"
    advice = "deep, strongest activations: objects that fill the frame"

    def pool(self, features):
        return _pooling().mac(features)

    def pool_array(self, features):
        return numpy_pooling.mac(features)


@dataclass(frozen=True)
class SpocConfig(CnnConfig):
    centre_prior: bool = True  # weigh positions by a Gaussian centred on the image


class Spoc(CnnDescriptor):
    """SPoC: sum pooling with a centre prior (Babenko & Lempitsky, ICCV 2015)."""

    name = "spoc"
    advice = "deep, average pooling: whole scenes"
    Config = SpocConfig

    def pool(self, features):
        return _pooling().spoc(features, prior=self.config.centre_prior)

    def pool_array(self, features):
        return numpy_pooling.spoc(features, prior=self.config.centre_prior)


class Crow(CnnDescriptor):
    """CroW: spatially and channel-weighted sum pooling (Kalantidis et al., 2016)."""

    name = "crow"
    advice = "deep, weighted pooling: landmarks in clutter"

    def pool(self, features):
        return _pooling().crow(features)

    def pool_array(self, features):
        return numpy_pooling.crow(features)


@dataclass(frozen=True)
class RmacConfig(CnnConfig):
    levels: int = 3  # region scales L


class Rmac(CnnDescriptor):
    """R-MAC: MAC over regions at ``levels`` scales, normalised and summed (Tolias et al., ICLR 2016).

    The paper also whitens each region vector; here, whiten the final vector with the
    ``whitening`` option, learned on an independent set (``lookalike train --whiten``).
    """

    name = "rmac"
    advice = "deep, regional: objects anywhere in the frame"
    Config = RmacConfig

    def validate(self) -> None:
        super().validate()
        if self.config.levels < 1:
            raise LookalikeError(f"rmac: levels must be >= 1, got {self.config.levels}")

    def pool(self, features):
        return _pooling().rmac(features, self.config.levels)

    def pool_array(self, features):
        return numpy_pooling.rmac(features, self.config.levels)


@dataclass(frozen=True)
class GemConfig(CnnConfig):
    # the generalised-mean exponent: 1 = average, large = max; None = the p learned with the
    # weights (a `lookalike finetune` model file), else 3
    p: float | None = None


class Gem(CnnDescriptor):
    """GeM: generalised-mean pooling (Radenović et al., PAMI 2018)."""

    name = "gem"
    advice = "deep, the best default for objects and places"
    Config = GemConfig

    def validate(self) -> None:
        super().validate()
        if self.config.p is not None and not self.config.p > 0:
            raise LookalikeError(f"gem: p must be > 0, got {self.config.p}")

    @property
    def p(self) -> float:
        """The exponent in use: ``-s p=...`` if given, else the fine-tuned model's, else 3."""
        if self.config.p is not None:
            return self.config.p
        if not self.config.weights:
            return 3.0
        from lookalike.descriptors.cnn.backbone import read_weights_config

        learned = read_weights_config(self.config.weights).get("p")
        return float(learned) if learned is not None else 3.0

    def pool(self, features):
        return _pooling().gem(features, self.p)

    def pool_array(self, features):
        return numpy_pooling.gem(features, self.p)


@dataclass(frozen=True)
class NetVladConfig(CnnConfig):
    vocabulary: str = ""  # k-means centres of feature-map vectors (.npz) from `lookalike train`
    k: int = 16  # clusters


class NetVlad(CnnDescriptor):
    """NetVLAD pooling (Arandjelović et al., CVPR 2016), initialised from k-means on the
    network's own feature-map vectors: VLAD with a soft assignment, before any training.

    Output: ``k * channels`` values (20,480 for EfficientNet-Lite0 with k=16); reduce it with the
    ``whitening`` option.
    """

    name = "netvlad"
    file_options = ("whitening", "weights", "vocabulary")
    advice = "deep, places (Arandjelovic et al.); needs a vocabulary"
    Config = NetVladConfig

    def validate(self) -> None:
        super().validate()
        c = self.config
        if c.k < 1:
            raise LookalikeError(f"netvlad: k must be >= 1, got {c.k}")
        if c.vocabulary and not Path(c.vocabulary).is_file():
            raise LookalikeError(f"netvlad: vocabulary {c.vocabulary} not found; train one with `lookalike train`")

    @property
    def trained(self) -> bool:
        return bool(self.config.vocabulary)

    @property
    def raw_dim(self) -> int:
        return self.config.k * _channels(self.config)

    @property
    def layer(self) -> pooling.NetVLAD:
        if not self.trained:
            raise LookalikeError(
                "netvlad needs k-means centres: run `lookalike train IMAGES -d netvlad --out FILE` "
                "and pass -s vocabulary=FILE")
        path = Path(self.config.vocabulary).resolve()
        return _netvlad_layer(str(path), path.stat().st_mtime_ns, self.config.k)

    def pool(self, features):
        return self.layer(features)

    # ---- learning -----------------------------------------------------------------------
    def training_sample(self, image: np.ndarray) -> np.ndarray:
        """Up to PER_IMAGE feature-map vectors of the image (at the first scale), evenly spaced."""
        from lookalike.descriptors.aggregate.registered import PER_IMAGE

        return evenly_spaced(self.feature_map(self.prepare(image)[0]).flatten(1).T.numpy(), PER_IMAGE)

    def fit(self, per_image: list[np.ndarray], out: str | Path, *, seed: int = 0) -> NetVlad:
        import torch

        from lookalike.descriptors.aggregate import KMeansVocabulary

        sample = np.concatenate([x for x in per_image if len(x)])
        sample = l2_normalise(sample)
        centres = KMeansVocabulary(self.config.k, seed=seed).fit(sample).centers_
        alpha = _pooling().assignment_sharpness(torch.from_numpy(sample), torch.from_numpy(centres))
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp.npz")
        np.savez(tmp, kind="netvlad", k=self.config.k, centres=centres.astype(np.float32), alpha=alpha)
        os.replace(tmp, out)
        return type(self)(self.config, vocabulary=str(out.resolve()))


def netvlad_from_file(path: str | Path, k: int) -> pooling.NetVLAD:
    """A trainable NetVLAD layer from a ``netvlad`` file: its k-means initialisation, or the centres
    and assignment learnt end to end (``lookalike finetune -d netvlad``)."""
    import torch

    from lookalike.descriptors.aggregate.trained import read_netvlad

    arrays = read_netvlad(path, k)
    layer = _pooling().NetVLAD.from_centres(torch.from_numpy(arrays["centres"]), float(arrays["alpha"]))
    if "assign_weight" in arrays:
        with torch.no_grad():
            layer.assign.weight.copy_(torch.from_numpy(arrays["assign_weight"])[:, :, None, None])
            layer.assign.bias.copy_(torch.from_numpy(arrays["assign_bias"]))
    return layer


@lru_cache(maxsize=8)
def _netvlad_layer(path: str, mtime: int, k: int) -> pooling.NetVLAD:
    return netvlad_from_file(path, k).eval().requires_grad_(False)
