"""The fine-tuning loop: tuples, hard negatives, checkpoints, validation and the final model.

Each epoch draws its tuples (or, for the classification loss, its images) from a generator seeded
by ``(seed, epoch)``, and the network keeps its batch-norm statistics frozen (a handful of tuples
per step is too few to estimate them) and has no dropout: an epoch is a deterministic function of
the weights it starts from, so a run resumed from its checkpoint ends with the same weights as a
run that was never interrupted.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from lookalike.errors import LookalikeError
from lookalike.train.checkpoints import run_epochs
from lookalike.train.data import LabelledImages, decode_square, split_classes
from lookalike.train.losses import contrastive_loss, triplet_loss
from lookalike.train.mining import hardest_negatives, random_negatives, random_positives
from lookalike.train.model import RetrievalNet, save_model

LOSSES = ("contrastive", "triplet", "classification")
DEFAULT_MARGIN = {"contrastive": 0.75, "triplet": 0.1}


@dataclass(frozen=True)
class FinetuneConfig:
    loss: str = "contrastive"  # contrastive, triplet, or classification (the "neural codes" baseline)
    epochs: int = 10  # epochs; the saved model is the epoch with the best validation mAP
    queries: int = 300  # tuples per epoch (classification: as many images as these tuples hold)
    negatives: int = 5  # negatives per tuple, each of a different class
    mining: bool = True  # hard negatives from a pool described every epoch; False = random classes
    pool: int = 800  # images in the mining pool (random, redrawn every epoch)
    margin: float = 0.0  # 0 = the loss's usual one: 0.75 (contrastive), 0.1 (triplet)
    batch: int = 8  # tuples per optimiser step
    lr: float = 1e-4  # Adam learning rate of the backbone (the best of 1e-5, 3e-5, 1e-4 on eth80)
    new_lr_factor: float = 10.0  # GeM's p and the classifier learn this much faster, without decay
    weight_decay: float = 1e-6  # of the backbone's weights
    lr_decay: float = 0.99  # the learning rates are multiplied by this after every epoch
    resolution: int = 224  # training images are squashed to this square side
    p: float = 3.0  # GeM's initial exponent
    val_fraction: float = 0.2  # share of the classes held out to choose the epoch (0 = keep the last)
    seed: int = 0  # seeds the split, the tuples and the new layers: a CPU run is reproducible
    device: str = "cpu"  # cpu or cuda


class Finetuner:
    """Fine-tunes a backbone and its GeM pooling for retrieval on labelled images.

    ``fit`` writes a checkpoint after every epoch (``<out>.checkpoint``), continues from it when
    ``resume`` is set, and writes the model of the best validation epoch to ``out``.
    """

    def __init__(self, config: FinetuneConfig = FinetuneConfig(), *, backbone: str = "efficientnet-lite0",
                 weights: str = "") -> None:
        c = config
        if c.loss not in LOSSES:
            raise LookalikeError(f"unknown loss {c.loss!r}; choose one of {', '.join(LOSSES)}")
        if c.epochs < 0 or c.queries < 1 or c.negatives < 1 or c.batch < 1 or c.pool < 1:
            raise LookalikeError(f"need epochs >= 0 and queries, negatives, batch, pool >= 1; got {c}")
        if not (c.lr > 0 and c.resolution >= 32 and c.p > 0 and 0 <= c.val_fraction < 1 and c.margin >= 0):
            raise LookalikeError(f"need lr > 0, resolution >= 32, p > 0, 0 <= val_fraction < 1, margin >= 0; got {c}")
        if c.device.startswith("cuda") and not torch.cuda.is_available():
            raise LookalikeError(f"device {c.device!r}: no CUDA device here; use --device cpu")
        self.config, self.backbone, self.weights = c, backbone, weights

    @property
    def margin(self) -> float:
        return self.config.margin or DEFAULT_MARGIN.get(self.config.loss, 0.0)

    def fit(self, images: LabelledImages, out: str | Path, *, resume: bool = False,
            progress: bool = True) -> dict:
        """Train on ``images`` and save the model to ``out``; returns the training report."""
        c, out = self.config, Path(out)
        train_rows, val_rows = split_classes(images, c.val_fraction, c.seed)
        train, val = images.subset(train_rows), images.subset(val_rows)
        if len(train.classes) < 2:
            raise LookalikeError(f"fine-tuning needs at least 2 training classes, got {len(train.classes)}")
        negatives = min(c.negatives, len(train.classes) - 1)
        device = torch.device(c.device)
        pixels = torch.from_numpy(decode_square(train.paths, c.resolution,
                                                progress="decoding training images" if progress else None))
        val_pixels = torch.from_numpy(decode_square(val.paths, c.resolution, progress=None))

        torch.manual_seed(c.seed)
        net = RetrievalNet(self.backbone, self.weights, c.p,
                           classes=len(train.classes) if c.loss == "classification" else 0).to(device)
        net.eval()  # frozen batch norm, no dropout (see the module docstring)
        net.requires_grad_(True)
        new = [net.pool.p] + (list(net.classifier.parameters()) if net.classifier is not None else [])
        optimiser = torch.optim.Adam([
            {"params": list(net.backbone.parameters()), "weight_decay": c.weight_decay},
            {"params": new, "lr": c.lr * c.new_lr_factor, "weight_decay": 0.0},
        ], lr=c.lr)
        schedule = torch.optim.lr_scheduler.ExponentialLR(optimiser, gamma=c.lr_decay)

        def train_epoch(epoch: int) -> dict:
            rng = np.random.default_rng([c.seed, epoch])
            start = time.perf_counter()
            if c.loss == "classification":
                batches = classification_batches(train, c, negatives, rng)
            else:
                batches = self._tuple_batches(net, pixels, train, negatives, rng, device)
            mined = time.perf_counter() - start
            loss, seen = self._epoch(net, optimiser, pixels, train, batches, negatives, device,
                                     f"epoch {epoch + 1}/{c.epochs}" if progress else None)
            trained = time.perf_counter() - start - mined
            return {"loss": loss, "p": float(net.pool.p.detach()), "mining_seconds": mined,
                    "train_seconds": trained, "images_per_second": seen / max(trained, 1e-9)}

        state = run_epochs(net, optimiser, epochs=c.epochs, config=asdict(c),
                           checkpoint=out.with_name(out.name + ".checkpoint"), resume=resume,
                           train_epoch=train_epoch, schedule=schedule,
                           validate=(lambda: class_map(embed(net, val_pixels, device), val.labels)) if len(val)
                           else None)
        report = {
            "training": {**asdict(c), "margin": self.margin, "negatives": negatives,
                         "from_weights": self.weights or "packaged"},
            "train_images": len(train), "train_classes": len(train.classes),
            "val_images": len(val), "val_classes": len(val.classes),
            "best_epoch": state["best_epoch"], "val_map": state["best_map"] if len(val) else None,
            "history": state["history"],
        }
        save_model(net, out, report)
        return report

    # ---- one epoch ----------------------------------------------------------------------
    def _tuple_batches(self, net, pixels, train: LabelledImages, negatives: int, rng, device) -> list[np.ndarray]:
        c = self.config
        queries = rng.choice(len(train), size=min(c.queries, len(train)), replace=False)
        positives = random_positives(queries, train.labels, rng)
        if c.mining:
            pool = rng.choice(len(train), size=min(c.pool, len(train)), replace=False)
            vectors = embed(net, pixels[pool], device)
            chosen = hardest_negatives(embed(net, pixels[queries], device), torch.from_numpy(train.labels[queries]),
                                       vectors, torch.from_numpy(train.labels[pool]), negatives)
            chosen = np.where(chosen.numpy() >= 0, pool[chosen.numpy().clip(0)], -1)
        else:
            chosen = random_negatives(train.labels[queries], train.labels, negatives, rng)
        tuples = np.concatenate([queries[:, None], positives[:, None], chosen], axis=1)  # (Q, 2 + K)
        tuples = tuples[(tuples >= 0).all(axis=1)]
        return [tuples[i:i + c.batch] for i in range(0, len(tuples), c.batch)]

    def _epoch(self, net, optimiser, pixels, train: LabelledImages, batches, negatives: int, device,
               progress: str | None) -> tuple[float, int]:
        from tqdm import tqdm

        total, count, seen = 0.0, 0, 0
        bar = tqdm(batches, desc=progress, disable=progress is None, unit="step", leave=False)
        for batch in bar:
            images = pixels[torch.from_numpy(batch.reshape(-1))].to(device).float()
            if self.config.loss == "classification":
                logits = net.classifier(net.pooled(images))
                loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(train.labels[batch]).to(device))
            else:
                vectors = net(images).view(len(batch), 2 + negatives, -1)
                loss_fn = contrastive_loss if self.config.loss == "contrastive" else triplet_loss
                loss = loss_fn(vectors[:, 0], vectors[:, 1], vectors[:, 2:], margin=self.margin)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            with torch.no_grad():
                net.pool.p.clamp_(min=1.0)  # below 1 GeM is no longer between average and max
            total, count, seen = total + loss.item(), count + 1, seen + batch.size
            bar.set_postfix(loss=f"{total / count:.4f}")
        return total / max(count, 1), seen


def classification_batches(train: LabelledImages, c, negatives: int, rng) -> list[np.ndarray]:
    """One epoch's batches of image indices for the classification loss: as many images per step,
    and per epoch, as ``c``'s ranking tuples hold (``c``: any config with ``batch`` and ``queries``)."""
    size = c.batch * (2 + negatives)  # as many images per step as the ranking losses use
    order = rng.permutation(len(train))[:min(len(train), c.queries * (2 + negatives))]
    return [order[i:i + size] for i in range(0, len(order), size)]


# ---- pure functions ---------------------------------------------------------------------------
def embed(net: RetrievalNet, pixels: torch.Tensor, device, batch: int = 32) -> torch.Tensor:
    """``[N, C]`` descriptors (on the CPU) of ``[N, 3, H, W]`` uint8 pixels, without gradients."""
    with torch.no_grad():
        parts = [net(pixels[i:i + batch].to(device).float()).cpu() for i in range(0, len(pixels), batch)]
    return torch.cat(parts) if parts else torch.zeros(0, net.backbone.channels)


def class_map(vectors: torch.Tensor, labels: np.ndarray) -> float:
    """Mean average precision of every item as a query against all the others, relevant = same label.

    Non-interpolated AP, each query excluded from its own ranking; queries alone in their class
    are skipped. ``vectors`` ``[N, D]`` L2-normalised, ``labels`` ``(N,)``.
    """
    scores = (vectors @ vectors.T).numpy()
    np.fill_diagonal(scores, -np.inf)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :-1]  # the query itself comes last
    relevant = labels[order] == labels[:, None]
    hits = relevant.cumsum(axis=1)
    counts = relevant.sum(axis=1)
    precision = hits / np.arange(1, relevant.shape[1] + 1)
    ap = (precision * relevant).sum(axis=1) / np.maximum(counts, 1)
    return float(ap[counts > 0].mean()) if (counts > 0).any() else math.nan

