"""Self-supervised training for copy detection, without labels (SSCD, Pizzi et al. CVPR 2022).

Every image of an unlabelled folder is its own class: each step draws a batch of images, makes
two strongly edited copies of each (:mod:`lookalike.train.augment`), and trains the network so that
the two copies of an image are closer to each other than to every other copy in the batch
(InfoNCE over the ``2B`` copies), while a differential-entropy term (the Kozachenko-Leonenko
estimator, as SSCD) keeps the descriptors spread over the sphere.

To fit a CPU, only the last ``trainable_blocks`` blocks of the backbone (and its head convolution)
learn; the frozen front runs without gradients. Batch norm stays frozen and the copies of epoch
``e`` come from a generator seeded by ``(seed, e)``, as in :mod:`lookalike.train.loop`. A share of
the images is held out: each gets one edited copy, and the validation score is the mAP of finding
the copy from the original and the original from the copy, which needs no labels either.
The model is saved in the one-file format of :func:`lookalike.train.model.save_model`.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from lookalike.errors import ImageError, LookalikeError
from lookalike.train.augment import AugmentConfig, augment
from lookalike.train.checkpoints import run_epochs
from lookalike.train.loop import class_map, embed
from lookalike.train.model import RetrievalNet, save_model


@dataclass(frozen=True)
class SelfSupervisedConfig:
    epochs: int = 4  # epochs; the saved model is the epoch with the best validation mAP
    images: int = 512  # images per epoch, each giving two copies (0 = all of them)
    batch: int = 32  # images per step: their 2 x batch copies are each other's negatives
    temperature: float = 0.05  # of the InfoNCE softmax (SSCD's value)
    entropy_weight: float = 1.0  # weight of the entropy regulariser (SSCD's lambda is 30; see docs/design.md)
    lr: float = 1e-4  # Adam learning rate of the trainable blocks (GeM's p: 10x, no decay)
    weight_decay: float = 1e-6  # of the trainable blocks' weights
    resolution: int = 160  # side of the square copies
    trainable_blocks: int = 0  # only the last blocks (and the head convolution) learn; 0 = all the backbone
    p: float = 3.0  # GeM's initial exponent
    val_fraction: float = 0.1  # share of the images held out to choose the epoch (0 = keep the last)
    seed: int = 0  # seeds the split and the copies: a CPU run is reproducible
    device: str = "cpu"  # cpu or cuda


class SelfSupervisedTrainer:
    """Trains a backbone and its GeM pooling for copy detection on unlabelled images."""

    def __init__(self, config: SelfSupervisedConfig = SelfSupervisedConfig(), augmentations: AugmentConfig =
                 AugmentConfig(), *, backbone: str = "efficientnet-lite0", weights: str = "") -> None:
        c = config
        if c.epochs < 0 or c.images < 0 or c.batch < 2 or c.trainable_blocks < 0:
            raise LookalikeError(f"need epochs >= 0, images >= 0, batch >= 2 and trainable_blocks >= 0; got {c}")
        if not (c.lr > 0 and c.resolution >= 32 and c.p > 0 and 0 <= c.val_fraction < 1 and c.temperature > 0
                and c.entropy_weight >= 0):
            raise LookalikeError("need lr > 0, resolution >= 32, p > 0, 0 <= val_fraction < 1, temperature > 0 "
                                 f"and entropy_weight >= 0; got {c}")
        if c.device.startswith("cuda") and not torch.cuda.is_available():
            raise LookalikeError(f"device {c.device!r}: no CUDA device here; use --device cpu")
        self.config, self.augmentations, self.backbone, self.weights = c, augmentations, backbone, weights

    def fit(self, paths: list[Path], out: str | Path, *, resume: bool = False, progress: bool = True) -> dict:
        """Train on the images ``paths`` and save the model to ``out``; returns the training report."""
        c, out = self.config, Path(out)
        held = int(round(c.val_fraction * len(paths)))
        if len(paths) - held < c.batch or (c.val_fraction > 0 and held < 2):
            raise LookalikeError(f"{len(paths)} images: too few for a batch of {c.batch} and a validation "
                                 f"share of {c.val_fraction} (at least 2); add images or lower --batch")
        order = np.random.default_rng(c.seed).permutation(len(paths))
        train = [paths[i] for i in order[held:]]
        device = torch.device(c.device)
        val_pixels = self._validation_copies([paths[i] for i in order[:held]])

        torch.manual_seed(c.seed)
        net = RetrievalNet(self.backbone, self.weights, c.p).to(device)
        net.eval()  # frozen batch norm, no dropout
        trainable = trainable_parameters(net, c.trainable_blocks)
        optimiser = torch.optim.Adam([
            {"params": trainable, "weight_decay": c.weight_decay},
            {"params": [net.pool.p], "lr": c.lr * 10, "weight_decay": 0.0},
        ], lr=c.lr)
        checkpoint = out.with_name(out.name + ".checkpoint")
        def train_epoch(epoch: int) -> dict:
            rng = np.random.default_rng([c.seed, epoch])
            chosen = rng.permutation(len(train))[:c.images or len(train)]
            start = time.perf_counter()
            loss, seen = self._epoch(net, optimiser, [train[i] for i in chosen], rng, device,
                                     f"epoch {epoch + 1}/{c.epochs}" if progress else None)
            seconds = time.perf_counter() - start
            return {"loss": loss, "p": float(net.pool.p.detach()), "train_seconds": seconds,
                    "images_per_second": seen / max(seconds, 1e-9)}

        state = run_epochs(net, optimiser, epochs=c.epochs, config=asdict(c), checkpoint=checkpoint, resume=resume,
                           train_epoch=train_epoch,
                           validate=(lambda: self._validate(net, val_pixels, device)) if held else None)
        report = {"training": {**asdict(c), "loss": "sscd", "augmentations": asdict(self.augmentations),
                               "from_weights": self.weights or "packaged"},
                  "train_images": len(train), "val_images": held, "best_epoch": state["best_epoch"],
                  "val_map": state["best_map"] if held else None, "history": state["history"]}
        save_model(net, out, report)
        return report

    def _epoch(self, net, optimiser, paths: list[Path], rng, device, progress: str | None) -> tuple[float, int]:
        from tqdm import tqdm

        c = self.config
        total, count, seen = 0.0, 0, 0
        steps = [paths[i:i + c.batch] for i in range(0, len(paths) - c.batch + 1, c.batch)]  # full batches only
        bar = tqdm(steps, desc=progress, disable=progress is None, unit="step", leave=False)
        for batch in bar:
            images = [_open(p, c.resolution) for p in batch]
            copies = np.stack([augment(im, c.resolution, rng, self.augmentations) for im in images for _ in (0, 1)])
            vectors = net(torch.from_numpy(copies).to(device).float()).view(len(batch), 2, -1)
            loss = info_nce_loss(vectors[:, 0], vectors[:, 1], c.temperature)
            if c.entropy_weight:
                loss = loss + c.entropy_weight * entropy_loss(vectors.reshape(2 * len(batch), -1),
                                                              torch.arange(len(batch)).repeat_interleave(2))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            with torch.no_grad():
                net.pool.p.clamp_(min=1.0)
            total, count, seen = total + loss.item(), count + 1, seen + len(copies)
            bar.set_postfix(loss=f"{total / count:.4f}")
        return total / max(count, 1), seen

    def _validation_copies(self, paths: list[Path]) -> torch.Tensor:
        """``[2V, 3, S, S]``: the V held-out originals (whole, squashed), then one edited copy of each."""
        side = self.config.resolution
        rng = np.random.default_rng([self.config.seed, 1 << 20])  # never an epoch's stream
        images = [_open(p, side) for p in paths]
        originals = [np.asarray(im.resize((side, side))).transpose(2, 0, 1) for im in images]
        copies = [augment(im, side, rng, self.augmentations) for im in images]
        return torch.from_numpy(np.stack(originals + copies)) if paths else torch.zeros(0, 3, side, side)

    def _validate(self, net, pixels: torch.Tensor, device) -> float:
        half = len(pixels) // 2
        return class_map(embed(net, pixels, device), np.tile(np.arange(half), 2))


def trainable_parameters(net: RetrievalNet, blocks: int) -> list[torch.nn.Parameter]:
    """Freeze all of ``net``'s backbone but its last ``blocks`` blocks and head convolution (all of it
    when 0); returns the parameters left to learn. Only EfficientNet backbones have blocks."""
    network = getattr(net.backbone.features, "network", None)
    if blocks == 0:
        net.backbone.requires_grad_(True)
        return list(net.backbone.parameters())
    if network is None or not hasattr(network, "_blocks"):
        raise LookalikeError(f"trainable_blocks={blocks} needs an EfficientNet backbone, not "
                             f"{net.backbone_name!r}; use 0 (train the whole backbone)")
    if blocks > len(network._blocks):
        raise LookalikeError(f"trainable_blocks={blocks}: {net.backbone_name} has {len(network._blocks)} blocks")
    net.backbone.requires_grad_(False)
    learning = [*network._blocks[-blocks:], network._conv_head, network._bn1]
    for module in learning:
        module.requires_grad_(True)
    net.pool.requires_grad_(True)
    return [p for module in learning for p in module.parameters()]


def _open(path: Path, side: int):
    from PIL import Image

    from lookalike.io.images import load_image

    try:
        return Image.fromarray(load_image(path, max_side=2 * side).pixels)
    except ImageError as exc:
        raise LookalikeError(f"training image {exc}; remove it from the training folder") from None


# ---- pure functions ---------------------------------------------------------------------------
def info_nce_loss(a: torch.Tensor, b: torch.Tensor, temperature: float = 0.05) -> torch.Tensor:
    """InfoNCE / NT-Xent over B pairs (Oord et al. 2018; Chen et al. SimCLR, ICML 2020; SSCD).

    ``a [B, D]`` and ``b [B, D]``: L2-normalised descriptors of two copies of B images. Each of the
    2B copies is a query whose positive is its pair and whose negatives are the 2B - 2 other copies:
    ``-log(exp(s_pos / t) / sum_{k != self} exp(s_k / t))``, averaged over the 2B copies.
    """
    if a.ndim != 2 or a.shape != b.shape or len(a) < 2:
        raise ValueError(f"expected two [B, D] tensors with B >= 2, got {tuple(a.shape)} and {tuple(b.shape)}")
    x = torch.cat([a, b])  # [2B, D]
    logits = (x @ x.T) / temperature
    logits = logits.masked_fill(torch.eye(len(x), dtype=torch.bool, device=x.device), float("-inf"))
    n = len(a)
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(x.device)
    return torch.nn.functional.cross_entropy(logits, target)


def entropy_loss(x: torch.Tensor, instances: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Negative Kozachenko-Leonenko differential-entropy estimate (Sablayrolles et al. ICLR 2019; SSCD).

    ``x [N, D]`` L2-normalised, ``instances [N]`` which image each row is a copy of: ``-mean_i
    log(rho_i)``, ``rho_i`` the distance from row ``i`` to its nearest row of *another* image.
    Minimising it pushes each descriptor away from its nearest neighbour, spreading them out.
    """
    if x.ndim != 2 or instances.shape != (len(x),):
        raise ValueError(f"expected x [N, D] and instances [N], got {tuple(x.shape)} and {tuple(instances.shape)}")
    distances = torch.cdist(x, x)
    same = instances[:, None].to(x.device) == instances[None, :].to(x.device)
    nearest = distances.masked_fill(same, float("inf")).min(dim=1).values
    return -torch.log(nearest + eps).mean()
