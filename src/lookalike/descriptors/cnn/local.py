"""DELF-style deep local features from an intermediate feature map of the CNN.

Noh et al., "Large-scale image retrieval with attentive deep local features" (DELF), ICCV 2017:
every position of a mid-level feature map is a local descriptor whose keypoint is the centre of
its receptive field; the image is described at several scales, the positions with the highest
attention are kept, and the descriptors are reduced by PCA (40-D) and L2-normalised. The
attention is the descriptor's L2 norm unless the ``attention`` option names a learnt
:class:`AttentionHead` (``lookalike finetune -d delf``), and the map is EfficientNet-Lite0's
output at stride 16 (block 10, 112 channels), whose receptive field is large enough to be
distinctive while still localising to 16 pixels.

The PCA is learnt on training images (:meth:`Delf.fit`, an ``.npz`` read with
``allow_pickle=False``), the attention head on labelled ones (a ``.pt`` of plain tensors read with
``weights_only=True``); the ``pca`` and ``attention`` options name them, so worker processes
rebuild the same extractor from its spec.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lookalike.descriptors.cnn.backbone import Backbone, load_backbone
from lookalike.descriptors.cnn.engine import OnnxEngine, TorchEngine, default_threads, onnx_available
from lookalike.descriptors.cnn.inputs import check_input_options, scaled_inputs
from lookalike.descriptors.local.registry import LocalExtractor
from lookalike.descriptors.local.sift import LocalFeatures
from lookalike.errors import LookalikeError
from lookalike.norms import l2_normalise
from lookalike.postprocess.pca import PCA
from lookalike.sampling import evenly_spaced


@dataclass(frozen=True)
class DelfConfig:
    pca: str = ""  # PCA learnt by Delf.fit (.npz); required to describe
    dim: int = 40  # PCA output dimension
    block: int = 10  # the EfficientNet block whose output is the map (10: stride 16, 112 channels)
    scales: tuple[float, ...] = (1.0, 0.7071, 0.5)  # image scales; keypoints from all are pooled
    max_side: int = 1024  # longer side at scale 1 at most this (aspect ratio kept, never enlarged)
    max_keypoints: int = 1000  # keep the highest-scoring positions over all scales
    backbone: str = "efficientnet-lite0"  # the network (its packaged ImageNet weights)
    engine: str = "auto"  # onnx, torch, or auto (onnx where onnxruntime is installed)
    threads: int = 0  # threads of the forward pass; 0 = this process's share of the cores
    attention: str = ""  # learnt attention head (.pt from `lookalike finetune -d delf`); empty = feature norm


ATTENTION_FORMAT = "lookalike-delf-attention/1"


class AttentionHead(nn.Module):
    """DELF's attention (Noh et al., ICCV 2017): a non-negative score per position of a feature map.

    ``[B, C, h, w]`` -> ``[B, h, w]``: a 1x1 convolution to ``hidden`` channels, ReLU, a 1x1
    convolution to one channel, softplus. Trained with the features frozen, through a classifier
    over the attention-weighted mean of the features (:class:`lookalike.train.heads.AttentionPooling`), it learns
    which positions tell the training classes apart.
    """

    def __init__(self, channels: int = 112, hidden: int = 512) -> None:
        super().__init__()
        self.channels, self.hidden = channels, hidden
        self.layers = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(), nn.Conv2d(hidden, 1, 1), nn.Softplus())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)[:, 0]


def save_attention(head: AttentionHead, out: str | Path, config: dict) -> Path:
    """Write the head (atomically) as ``{"format", "state_dict", "config"}``; ``config`` holds at
    least ``block`` and ``backbone`` (which map it scores) and may hold the training report."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    state = {k: v.detach().cpu().clone() for k, v in head.state_dict().items()}
    torch.save({"format": ATTENTION_FORMAT, "state_dict": state,
                "config": {**config, "channels": head.channels, "hidden": head.hidden}}, tmp)
    os.replace(tmp, out)
    return out


@lru_cache(maxsize=4)
def _load_attention(path: str, mtime: int, backbone: str, block: int) -> AttentionHead:
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(saved, dict) or saved.get("format") != ATTENTION_FORMAT:
            raise ValueError(f"format {saved.get('format') if isinstance(saved, dict) else type(saved).__name__}")
        config = saved["config"]
        head = AttentionHead(int(config["channels"]), int(config["hidden"]))
        head.load_state_dict(saved["state_dict"])
    except (OSError, RuntimeError, ValueError, KeyError, TypeError) as exc:
        raise LookalikeError(f"{path}: not a DELF attention head from `lookalike finetune -d delf` "
                             f"({str(exc).splitlines()[0]})") from None
    if (config.get("backbone"), int(config.get("block", -1))) != (backbone, block):
        trained_for = f"{config.get('backbone')} block {config.get('block')}"
        raise LookalikeError(f"{path}: an attention head for {trained_for}, not {backbone} block {block}; "
                             f"use --local-set block={config.get('block')} or train a matching one")
    return head.eval().requires_grad_(False)


class _Truncated(nn.Module):
    """EfficientNet's stem and blocks ``0..block``: pixels -> the mid-level feature map."""

    def __init__(self, network: nn.Module, block: int) -> None:
        super().__init__()
        self.stem, self.bn = network._conv_stem, network._bn0
        self.blocks = nn.Sequential(*network._blocks[: block + 1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(nn.functional.relu6(self.bn(self.stem(x))))


def receptive_field_stride(backbone: Backbone, block: int) -> int:
    """The map's stride in input pixels: the product of the stem's and blocks' strides."""
    network = backbone.features.network
    stride = network._conv_stem.stride[0]
    for b in network._blocks[: block + 1]:
        stride *= b._depthwise_conv.stride[0]
    return stride


@lru_cache(maxsize=4)
def delf_engine(backbone: str, block: int, engine: str, threads: int):
    full = load_backbone(backbone)
    if not hasattr(full.features, "network"):
        raise LookalikeError(f"delf needs an EfficientNet backbone, not {backbone!r}")
    network = full.features.network
    if not 0 <= block < len(network._blocks):
        raise LookalikeError(f"delf: block must be in 0..{len(network._blocks) - 1}, got {block}")
    truncated = Backbone(_Truncated(network, block), channels=network._blocks[block]._bn2.num_features,
                         mean=(127.0,) * 3, std=(128.0,) * 3, key=f"{full.key}-block{block}").eval()
    threads = threads or default_threads()
    torch.set_num_threads(threads)
    use_onnx = engine == "onnx" or (engine == "auto" and onnx_available())
    runner = OnnxEngine(truncated.key, lambda: truncated, threads) if use_onnx else TorchEngine(truncated, threads)
    return runner, receptive_field_stride(full, block), truncated.channels


def dense_local_features(feature_map: np.ndarray, stride: int, scale_x: float, scale_y: float
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every position of one map ``[C, h, w]`` as a local feature.

    Returns keypoints ``(h*w, 2)`` (x, y) at the receptive-field centres, mapped to the original
    image by ``scale_x, scale_y`` (original pixels per network-input pixel), the descriptors
    ``(h*w, C)`` and their L2 norms ``(h*w,)`` (the attention score). A convolution of odd kernel
    ``k``, stride ``s`` and padding ``(k-1)/2`` centres its output ``j`` on input pixel ``s*j``,
    so position ``j`` of the map sits at pixel ``stride * j`` of the network's input.
    """
    channels, h, w = feature_map.shape
    descriptors = np.asarray(feature_map).reshape(channels, h * w).T.astype(np.float32)
    ys, xs = np.mgrid[0:h, 0:w]
    centres = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float32) * stride
    # pixel i covers [i, i + 1): map centres through the resize and back to pixel-centre convention
    centres[:, 0] = (centres[:, 0] + 0.5) * scale_x - 0.5
    centres[:, 1] = (centres[:, 1] + 0.5) * scale_y - 0.5
    return centres, descriptors, np.linalg.norm(descriptors, axis=1)


class Delf(LocalExtractor):
    """DELF-style local features: ``dim``-D PCA of EfficientNet mid-level features at several
    scales, the ``max_keypoints`` with the highest attention (the learnt head of the ``attention``
    option, else the feature norm), keypoints in input-image pixels.

    Keypoint scale is the receptive-field stride at that scale (in input pixels); angle is 0.
    """

    name = "delf"
    Config = DelfConfig

    def validate(self) -> None:
        c = self.config
        check_input_options("delf", c.engine, c.max_side, c.scales)
        if c.max_keypoints < 1 or c.dim < 1:
            raise LookalikeError(f"delf: need max_keypoints >= 1 and dim >= 1, got {c.max_keypoints}, {c.dim}")
        if c.pca and not Path(c.pca).is_file():
            raise LookalikeError(f"delf: pca {c.pca} not found; learn one with Delf.fit or `--train-images`")
        if c.attention and not Path(c.attention).is_file():
            raise LookalikeError(f"delf: attention {c.attention} not found; "
                                 "train one with `lookalike finetune -d delf`")

    @property
    def trained(self) -> bool:  # type: ignore[override]
        return bool(self.config.pca)

    @property
    def dim(self) -> int:
        return self.config.dim

    def raw_features(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Before PCA: keypoints ``(T, 4)``, raw descriptors ``(T, C)``, scores ``(T,)``, the
        ``max_keypoints`` highest scores over all scales, best first."""
        runner, stride, _ = delf_engine(self.config.backbone, self.config.block, self.config.engine,
                                        self.config.threads)
        height, width = image.shape[:2]
        maps = [(runner(pixels[None])[0], width / pixels.shape[2], height / pixels.shape[1])
                for pixels in scaled_inputs(image, self.config.max_side, self.config.scales)]
        return self.select(maps, stride)

    def select(self, maps: list[tuple[np.ndarray, float, float]], stride: int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`raw_features` from the maps of one image: ``(map [C, h, w], scale_x, scale_y)``
        per scale (original pixels per network-input pixel), the map's ``stride``."""
        head = self.attention_head
        points, descriptors, scores = [], [], []
        for feature_map, sx, sy in maps:
            xy, d, score = dense_local_features(feature_map, stride, sx, sy)  # score: the norm
            if head is not None:
                with torch.no_grad():
                    score = head(torch.as_tensor(feature_map, dtype=torch.float32)[None])[0].flatten().numpy()
            geometry = np.column_stack([xy, np.full(len(xy), stride * sx, np.float32), np.zeros(len(xy), np.float32)])
            points.append(geometry)
            descriptors.append(d)
            scores.append(score)
        points, descriptors, scores = np.concatenate(points), np.concatenate(descriptors), np.concatenate(scores)
        best = np.argsort(-scores, kind="stable")[: self.config.max_keypoints]
        return points[best].astype(np.float32), descriptors[best], scores[best]

    @property
    def attention_head(self) -> AttentionHead | None:
        """The learnt attention of the ``attention`` option, or None (the feature norm scores)."""
        if not self.config.attention:
            return None
        path = Path(self.config.attention).resolve()
        return _load_attention(str(path), path.stat().st_mtime_ns, self.config.backbone, self.config.block)

    def compute(self, image: np.ndarray) -> LocalFeatures:
        keypoints, raw, _ = self.raw_features(image)
        return self.reduce(keypoints, raw, (image.shape[1], image.shape[0]))

    def reduce(self, keypoints: np.ndarray, raw: np.ndarray, size: tuple[int, int]) -> LocalFeatures:
        """The local features of :meth:`raw_features`' output: PCA, then L2 normalisation."""
        reduced = l2_normalise(self.projection.transform(raw))
        return LocalFeatures(keypoints, reduced.astype(np.float32), size)

    @property
    def projection(self) -> PCA:
        if not self.trained:
            raise LookalikeError("delf needs a PCA: learn one with Delf.fit on training images "
                                 "(`lookalike eval --train-images DIR` does it) and pass pca=FILE")
        path = Path(self.config.pca).resolve()
        return _load_pca(str(path), path.stat().st_mtime_ns, self.config.dim, self.config.block)

    # ---- learning -----------------------------------------------------------------------
    def training_sample(self, image: np.ndarray, per_image: int = 300) -> np.ndarray:
        """Up to ``per_image`` raw descriptors of the image's kept positions, evenly spaced."""
        return evenly_spaced(self.raw_features(image)[1], per_image)

    def fit(self, per_image: list[np.ndarray], out: str | Path) -> Delf:
        """Learn the PCA from :meth:`training_sample` arrays, save it to ``out`` (.npz, atomically)
        and return the trained extractor."""
        sample = np.concatenate([x for x in per_image if len(x)]) if per_image else np.zeros((0, 0))
        pca = PCA(self.config.dim).fit(sample)
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp.npz")
        np.savez(tmp, kind="delf", block=self.config.block, mean=pca.mean_.astype(np.float32),
                 components=pca.components_.astype(np.float32),
                 explained_variance=pca.explained_variance_.astype(np.float32))
        os.replace(tmp, out)
        return type(self)(self.config, pca=str(out.resolve()))


@lru_cache(maxsize=8)
def _load_pca(path: str, mtime: int, dim: int, block: int) -> PCA:
    try:
        with np.load(path, allow_pickle=False) as data:
            kind, trained_block = str(data["kind"]), int(data["block"])
            mean, components = data["mean"], data["components"]
            variance = data["explained_variance"]
    except (OSError, ValueError, KeyError) as exc:
        raise LookalikeError(f"{path}: not a lookalike DELF PCA file ({exc})") from None
    if kind != "delf" or trained_block != block or len(components) != dim:
        raise LookalikeError(f"{path}: a DELF PCA for block {trained_block} and dim {len(components)}, "
                             f"not block {block} and dim {dim}; learn a matching one")
    pca = PCA(dim)
    pca.mean_, pca.components_, pca.explained_variance_ = mean.astype(np.float64), components, variance
    return pca
