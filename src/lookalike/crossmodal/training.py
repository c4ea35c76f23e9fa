"""The training loop of the joint embedding's heads: batches with in-batch negatives, validation,
early stopping, checkpoints that resume, a tqdm bar and a plot of the curves."""

from __future__ import annotations

import copy
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from tqdm import tqdm

from lookalike.crossmodal.losses import cross_modal_triplet_loss, info_nce_loss, visual_triplet_loss
from lookalike.crossmodal.metrics import text_image_retrieval
from lookalike.errors import LookalikeError

if TYPE_CHECKING:
    from lookalike.crossmodal.joint import JointEmbedding


def batch_loss(model: JointEmbedding, images: torch.Tensor, texts: torch.Tensor,
               caption_similarity: torch.Tensor | None, positives: torch.Tensor | None = None,
               temperature: torch.Tensor | float | None = None) -> torch.Tensor:
    """The configured loss of one batch: ``positives [B, M]`` pairs image ``i`` with its texts (by
    default, text ``i``); ``temperature`` (InfoNCE) defaults to the configured one."""
    c = model.config
    x, t = model.image_head_(images), model.text_head_(texts)
    similarity = x @ t.T
    if c.method == "infonce":
        return info_nce_loss(similarity, c.temperature if temperature is None else temperature, positives=positives)
    loss = similarity.sum() * 0.0
    if "i2t" in c.losses:
        loss = loss + cross_modal_triplet_loss(similarity, c.margin, hardest=c.hardest, positives=positives)
    if "t2i" in c.losses:
        loss = loss + cross_modal_triplet_loss(similarity.T, c.margin, hardest=c.hardest,
                                               positives=None if positives is None else positives.T)
    if "visual" in c.losses:
        loss = loss + c.visual_weight * visual_triplet_loss(x, caption_similarity, c.margin, hardest=c.hardest)
    return loss


class Temperature(torch.nn.Module):
    """InfoNCE's temperature, learnt as ``log(1 / temperature)`` (CLIP), or fixed."""

    def __init__(self, temperature: float, learn: bool) -> None:
        super().__init__()
        self.log_scale = torch.nn.Parameter(torch.tensor(float(np.log(1.0 / temperature))), requires_grad=learn)

    def forward(self) -> torch.Tensor:
        return 1.0 / self.log_scale.clamp(max=float(np.log(100.0))).exp()


def train_heads(model: JointEmbedding, images: np.ndarray, texts: np.ndarray, owner: np.ndarray, *,
                caption_vectors: np.ndarray | None, views: np.ndarray | None, validation: tuple | None,
                checkpoint: str | Path | None, resume: bool, device: str,
                progress: bool) -> tuple[list[dict], dict[str, Any]]:
    """Train ``model``'s freshly built heads in place; return the per-epoch history and a report.

    Each epoch shuffles the images (seeded by ``seed`` and the epoch, so that a resumed run draws
    the same batches) and pairs each with one of its captions drawn at random, or with all of them
    (``captions="all"``); with ``augment="views"`` each image of a batch is one of its ``views``
    drawn at random.
    """
    c = model.config
    if device == "cuda" and not torch.cuda.is_available():
        raise LookalikeError("--device cuda: no CUDA device is available to torch; use --device cpu")
    temperature = Temperature(c.temperature, c.learn_temperature)
    heads = torch.nn.ModuleDict({"image": model.image_head_, "text": model.text_head_, "temperature": temperature})
    if c.init == "random":
        with torch.no_grad():  # centre the inputs on the training means (CCA has already)
            model.image_head_.mean.copy_(torch.from_numpy(images.mean(0)))
            model.text_head_.mean.copy_(torch.from_numpy(texts.mean(0)))
    heads.to(device)
    optimiser = torch.optim.AdamW([{"params": [*model.image_head_.parameters(), *model.text_head_.parameters()]},
                                   {"params": temperature.parameters(), "weight_decay": 0.0}],
                                  lr=c.lr, weight_decay=c.weight_decay)
    x, t = torch.from_numpy(images).to(device), torch.from_numpy(texts).to(device)
    augmented = torch.from_numpy(views).to(device) if c.augment == "views" else None
    documents = None if caption_vectors is None else torch.from_numpy(
        np.ascontiguousarray(caption_vectors, dtype=np.float32)).to(device)
    by_image = np.argsort(owner, kind="stable")
    counts = np.bincount(owner, minlength=len(images))
    if (counts == 0).any():
        raise LookalikeError(f"joint: {int((counts == 0).sum())} images have no caption")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])

    history: list[dict] = []
    best = {"score": -np.inf, "epoch": -1, "state": copy.deepcopy(heads.state_dict())}
    first = 0
    if resume and checkpoint and Path(checkpoint).is_file():
        try:
            saved = torch.load(checkpoint, map_location=device, weights_only=True)
            heads.load_state_dict(saved["heads"])
            optimiser.load_state_dict(saved["optimiser"])
        except (RuntimeError, KeyError, ValueError, OSError) as exc:
            raise LookalikeError(f"{checkpoint}: not a checkpoint of this training run ({type(exc).__name__}); "
                                 "delete it, or train without --resume") from None
        best = {"score": float(saved["best_score"]), "epoch": int(saved["best_epoch"]), "state": saved["best"]}
        history = [dict(zip(saved["history_keys"], row)) for row in saved["history"].tolist()]
        first = len(history)
    if validation is not None and not history:  # the starting point competes too (it may be CCA's solution)
        best["score"] = validation_score(model, validation)
    start = time.perf_counter()
    bar = tqdm(range(first, c.epochs), desc="training", unit="epoch", disable=not progress, leave=False)
    for epoch in bar:
        if validation is not None and epoch - best["epoch"] > c.patience:
            break
        rng = np.random.default_rng([c.seed, epoch])
        order = rng.permutation(len(images))
        heads.train()
        losses = []
        for begin in range(0, len(order), c.batch_size):
            batch = order[begin:begin + c.batch_size]
            if len(batch) < 2:
                continue
            positives = None
            if c.captions == "all":  # every caption of each batch image, image by image
                n = counts[batch]
                within = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
                caption = by_image[np.repeat(starts[batch], n) + within]
                positives = torch.from_numpy(
                    np.arange(len(batch))[:, None] == np.repeat(np.arange(len(batch)), n)[None]).to(device)
            else:
                caption = by_image[starts[batch] + rng.integers(0, counts[batch])]
            batch_t = torch.from_numpy(batch).to(device)
            if augmented is None:
                batch_x = x[batch_t]
            else:
                view = torch.from_numpy(rng.integers(0, augmented.shape[1], len(batch))).to(device)
                batch_x = augmented[batch_t, view]
            similar = None if documents is None else documents[batch_t] @ documents[batch_t].T
            loss = batch_loss(model, batch_x, t[torch.from_numpy(caption).to(device)], similar, positives,
                              temperature())
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(loss.item())
        row = {"epoch": epoch + 1, "loss": float(np.mean(losses)), "score": float("nan")}
        if validation is not None:
            row["score"] = validation_score(model, validation)
            if row["score"] > best["score"]:
                best = {"score": row["score"], "epoch": epoch, "state": copy.deepcopy(heads.state_dict())}
        history.append(row)
        shown = {"loss": f"{row['loss']:.4f}"}
        if validation is not None:
            shown["val_rsum"] = f"{row['score']:.3f}"
        bar.set_postfix(shown)
        if checkpoint:
            _save_checkpoint(checkpoint, heads, optimiser, best, history)
    bar.close()
    if validation is not None:
        heads.load_state_dict(best["state"])
    heads.to("cpu").eval()
    report = {"method": c.method, "images": len(images), "captions": len(texts), "epochs": len(history),
              "best_epoch": best["epoch"] + 1 if validation is not None else len(history),
              "validation_rsum": best["score"] if validation is not None else None,
              "train_seconds": time.perf_counter() - start, "device": device,
              "temperature": temperature().item()}
    return history, report


def validation_score(model: JointEmbedding, validation: tuple) -> float:
    """RSUM (sum of the six recalls) of text<->image retrieval on held-out ``(images, texts, owner)``."""
    images, texts, owner = validation
    model.image_head_.eval()
    model.text_head_.eval()
    device = model.image_head_.mean.device
    with torch.no_grad():
        x = model.image_head_(torch.as_tensor(images, device=device)).cpu().numpy()
        t = model.text_head_(torch.as_tensor(texts, device=device)).cpu().numpy()
    return text_image_retrieval(x, t, owner)["rsum"]


def _save_checkpoint(path: str | Path, heads, optimiser, best: dict, history: list[dict]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    keys = list(history[0]) if history else []
    torch.save({"heads": heads.state_dict(), "optimiser": optimiser.state_dict(), "best": best["state"],
                "best_score": float(best["score"]), "best_epoch": best["epoch"], "history_keys": keys,
                "history": torch.tensor([[row[k] for k in keys] for row in history], dtype=torch.float64)}, tmp)
    os.replace(tmp, path)


def plot_history(history: list[dict], path: str | Path, title: str = "") -> Path:
    """The training loss and validation RSUM per epoch, as a PNG."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise LookalikeError("plots need matplotlib: pip install 'lookalike[plot]'") from None
    epochs = [row["epoch"] for row in history]
    figure, left = plt.subplots(figsize=(6, 3.5))
    left.plot(epochs, [row["loss"] for row in history], color="tab:blue")
    left.set_xlabel("epoch")
    left.set_ylabel("training loss", color="tab:blue")
    scores = [row["score"] for row in history]
    if not all(np.isnan(scores)):
        right = left.twinx()
        right.plot(epochs, scores, color="tab:orange")
        right.set_ylabel("validation RSUM", color="tab:orange")
    left.set_title(title or "joint embedding training")
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
