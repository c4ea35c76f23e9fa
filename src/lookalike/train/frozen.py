"""Training a small head on frozen inputs: NetVLAD over a feature map, an MLP over Fisher vectors,
DELF's attention over a mid-level map.

The backbone (or the Fisher-vector pipeline) is frozen, so each image's input to the head is
computed once; an epoch then costs the head alone, which makes these models trainable on a CPU in
minutes. The loop is the one of :mod:`lookalike.train.loop` on cached inputs: tuples with hard
negatives (:mod:`lookalike.train.mining`) and a ranking loss (:mod:`lookalike.train.losses`), or a
classification loss through a temporary linear classifier; a share of the classes held out to keep
the best epoch; a checkpoint per epoch that ``resume`` continues, ending with the same weights as
an uninterrupted run (an epoch draws everything from a generator seeded by ``(seed, epoch)``).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lookalike.errors import LookalikeError
from lookalike.train.checkpoints import run_epochs
from lookalike.train.data import LabelledImages, split_classes
from lookalike.train.loop import DEFAULT_MARGIN, LOSSES, class_map, classification_batches
from lookalike.train.losses import contrastive_loss, triplet_loss
from lookalike.train.mining import hardest_negatives, random_negatives, random_positives


@dataclass(frozen=True)
class HeadConfig:
    loss: str = "triplet"  # triplet, contrastive, or classification (a linear classifier on `pooled`)
    epochs: int = 20  # epochs; the head of the best validation epoch is kept
    queries: int = 500  # tuples per epoch (classification: as many inputs as these tuples hold)
    negatives: int = 5  # negatives per tuple, each of a different class
    mining: bool = True  # hard negatives among the pool, embedded every epoch; False = random classes
    pool: int = 2000  # inputs embedded every epoch to mine negatives from
    margin: float = 0.0  # 0 = the loss's usual one: 0.1 (triplet), 0.75 (contrastive)
    batch: int = 16  # tuples per optimiser step
    lr: float = 1e-3  # Adam learning rate
    weight_decay: float = 1e-5  # of every weight of the head
    lr_decay: float = 0.95  # the learning rate is multiplied by this after every epoch
    val_fraction: float = 0.2  # share of the classes held out to choose the epoch (0 = keep the last)
    seed: int = 0  # seeds the split, the tuples and the classifier: a CPU run is reproducible

    @property
    def loss_margin(self) -> float:
        return self.margin or DEFAULT_MARGIN.get(self.loss, 0.0)

    def check(self) -> None:
        c = self
        if c.loss not in LOSSES:
            raise LookalikeError(f"unknown loss {c.loss!r}; choose one of {', '.join(LOSSES)}")
        if c.epochs < 0 or min(c.queries, c.negatives, c.batch, c.pool) < 1:
            raise LookalikeError(f"need epochs >= 0 and queries, negatives, batch, pool >= 1; got {c}")
        if not (c.lr > 0 and 0 <= c.val_fraction < 1 and c.margin >= 0 and 0 < c.lr_decay <= 1):
            raise LookalikeError(f"need lr > 0, 0 <= val_fraction < 1, margin >= 0, 0 < lr_decay <= 1; got {c}")


class _Trained(nn.Module):
    """The head and, for the classification loss, the classifier that trains it (then dropped)."""

    def __init__(self, head: nn.Module, classes: int, dim: int) -> None:
        super().__init__()
        self.head = head
        self.classifier = nn.Linear(dim, classes) if classes else None


def fit_head(head: nn.Module, inputs: torch.Tensor, images: LabelledImages, config: HeadConfig = HeadConfig(), *,
             checkpoint: str | Path | None = None, resume: bool = False, progress: bool = False) -> dict:
    """Train ``head`` in place on ``inputs`` (one row per image of ``images``, same order).

    ``head(x)`` maps a batch of inputs ``[B, ...]`` (float32) to L2-normalised descriptors
    ``[B, D]``; for the classification loss it also has ``pooled(x)`` ``[B, D']``, which a linear
    classifier over the training classes reads. ``inputs`` may be float16 (converted per batch).
    Returns the training report (history per epoch, best epoch, validation mAP); ``head`` ends
    with the weights of the best validation epoch.
    """
    c = config
    c.check()
    if len(inputs) != len(images):
        raise LookalikeError(f"{len(inputs)} inputs for {len(images)} images")
    train_rows, val_rows = split_classes(images, c.val_fraction, c.seed)
    train, val = images.subset(train_rows), images.subset(val_rows)
    if len(train.classes) < 2:
        raise LookalikeError(f"training needs at least 2 training classes, got {len(train.classes)}")
    negatives = min(c.negatives, len(train.classes) - 1)
    x_train, x_val = inputs[torch.from_numpy(train_rows)], inputs[torch.from_numpy(val_rows)]

    torch.manual_seed(c.seed)
    classes = len(train.classes) if c.loss == "classification" else 0
    net = _Trained(head, classes, _pooled_dim(head, x_train[:1]) if classes else 0)
    head.train()
    optimiser = torch.optim.Adam(net.parameters(), lr=c.lr, weight_decay=c.weight_decay)
    schedule = torch.optim.lr_scheduler.ExponentialLR(optimiser, gamma=c.lr_decay)

    def train_epoch(epoch: int) -> dict:
        rng = np.random.default_rng([c.seed, epoch])
        start = time.perf_counter()
        if classes:
            batches = classification_batches(train, c, negatives, rng)
        else:
            batches = _tuples(head, x_train, train.labels, c, negatives, rng)
        mined = time.perf_counter() - start
        loss, seen = _epoch(net, optimiser, x_train, train.labels, batches, c, negatives)
        trained = time.perf_counter() - start - mined
        return {"loss": loss, "mining_seconds": mined, "train_seconds": trained,
                "images_per_second": seen / max(trained, 1e-9)}

    def show(row: dict) -> None:
        print(f"epoch {row['epoch']}/{c.epochs}: loss {row['loss']:.4f}" +
              (f", validation mAP {row['val_map']:.4f}" if len(val) else ""), flush=True)

    state = run_epochs(net, optimiser, epochs=c.epochs, config=asdict(c),
                       checkpoint=Path(checkpoint) if checkpoint else None, resume=resume,
                       train_epoch=train_epoch, schedule=schedule, on_epoch=show if progress else None,
                       validate=(lambda: class_map(embed_inputs(head, x_val), val.labels)) if len(val) else None)
    head.eval()
    return {"training": {**asdict(c), "margin": c.loss_margin, "negatives": negatives},
            "train_images": len(train), "train_classes": len(train.classes),
            "val_images": len(val), "val_classes": len(val.classes), "best_epoch": state["best_epoch"],
            "val_map": state["best_map"] if len(val) else None, "history": state["history"]}


def _pooled_dim(head: nn.Module, sample: torch.Tensor) -> int:
    if not hasattr(head, "pooled"):
        raise LookalikeError(f"{type(head).__name__} has no pooled features for the classification loss")
    with torch.no_grad():
        return int(head.pooled(sample.float()).shape[1])


def _tuples(head, x_train, labels, c: HeadConfig, negatives: int, rng) -> list[np.ndarray]:
    queries = rng.choice(len(x_train), size=min(c.queries, len(x_train)), replace=False)
    positives = random_positives(queries, labels, rng)
    if c.mining:
        pool = rng.choice(len(x_train), size=min(c.pool, len(x_train)), replace=False)
        vectors = embed_inputs(head, x_train[torch.from_numpy(pool)])
        chosen = hardest_negatives(embed_inputs(head, x_train[torch.from_numpy(queries)]),
                                   torch.from_numpy(labels[queries]), vectors, torch.from_numpy(labels[pool]),
                                   negatives).numpy()
        chosen = np.where(chosen >= 0, pool[chosen.clip(0)], -1)
    else:
        chosen = random_negatives(labels[queries], labels, negatives, rng)
    tuples = np.concatenate([queries[:, None], positives[:, None], chosen], axis=1)
    tuples = tuples[(tuples >= 0).all(axis=1)]
    return [tuples[i:i + c.batch] for i in range(0, len(tuples), c.batch)]


def _epoch(net: _Trained, optimiser, x_train, labels, batches, c: HeadConfig, negatives: int) -> tuple[float, int]:
    total, count, seen = 0.0, 0, 0
    for batch in batches:
        x = x_train[torch.from_numpy(batch.reshape(-1))].float()
        if net.classifier is not None:
            logits = net.classifier(net.head.pooled(x))
            loss = nn.functional.cross_entropy(logits, torch.from_numpy(labels[batch]))
        else:
            vectors = net.head(x).view(len(batch), 2 + negatives, -1)
            loss_fn = contrastive_loss if c.loss == "contrastive" else triplet_loss
            loss = loss_fn(vectors[:, 0], vectors[:, 1], vectors[:, 2:], margin=c.loss_margin)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        total, count, seen = total + loss.item(), count + 1, seen + batch.size
    return total / max(count, 1), seen


def embed_inputs(head: nn.Module, inputs: torch.Tensor, batch: int = 256) -> torch.Tensor:
    """``[N, D]`` descriptors of ``inputs`` by ``head`` in eval mode, without gradients."""
    was_training = head.training
    head.eval()
    with torch.no_grad():
        parts = [head(inputs[i:i + batch].float()) for i in range(0, len(inputs), batch)]
    head.train(was_training)
    return torch.cat(parts) if parts else torch.zeros(0, 0)
