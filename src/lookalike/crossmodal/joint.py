"""The joint image-text space: two projection heads over frozen image descriptors and frozen text
embeddings, learnt with the triplet losses of Gordo & Larlus (CVPR 2017), a symmetric InfoNCE
loss, or in closed form by CCA.

A :class:`JointEmbedding` is an estimator: ``__init__`` stores the config and which image
descriptor and text encoder it sits on (their specs, JSON data); :meth:`JointEmbedding.fit` learns
the heads from paired rows; :meth:`encode_images` and :meth:`encode_texts` map into the space
(L2-normalised rows: cosine = inner product). :meth:`save` writes one file, ``torch.save`` of plain
tensors and a JSON-able config, that :meth:`load` reads back with ``weights_only=True``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lookalike.crossmodal.cca import cca
from lookalike.errors import LookalikeError

FORMAT = "lookalike-joint"
FORMAT_VERSION = 3  # 2: ensembles, all-caption training, the hubness correction (its bank.* tensors); 3: augment
METHODS = ("triplet", "infonce", "cca")
LOSSES = ("visual", "i2t", "t2i")
CAPTIONS = ("one", "all")
AUGMENTS = ("none", "views")
HUBNESS_WEIGHT = 0.5  # CSLS: 2 cos(q, x) - r(x) ranks as cos(q, x) - r(x) / 2 (r(q) is the same for every x)


@dataclass(frozen=True)
class JointConfig:
    method: str = "triplet"  # triplet (Gordo & Larlus's three losses), infonce, or cca (closed form)
    dim: int = 512  # dimension of the joint space
    hidden: int = 0  # width of the heads' hidden layer; 0 = linear heads
    dropout: float = 0.0  # dropout on the heads' inputs while training (few images: it curbs overfitting)
    losses: tuple[str, ...] = LOSSES  # triplet: which of visual, i2t, t2i to use (the ablation drops one)
    visual_weight: float = 1.0  # triplet: weight of the visual loss against the two cross-modal ones
    margin: float = 0.2  # triplet: the hinge's margin (cosines)
    hardest: bool = True  # triplet: the hardest negative of the batch (VSE++), else all violating ones
    temperature: float = 0.05  # infonce: softmax temperature (the starting one, if learnt)
    learn_temperature: bool = False  # infonce: learn the temperature with the heads (CLIP)
    captions: str = "one"  # per image and batch: one of its captions drawn at random, or "all" (all positives)
    # "views": augment the few training images with their views (each scale, the mirror image): the
    # trained heads see one view per image and batch, drawn at random, instead of the descriptor's sum
    # of them; cca adds every view, paired with the image's captions, to the pairs it correlates
    augment: str = "none"
    epochs: int = 300  # training passes over the images at most
    patience: int = 30  # stop after this many epochs without a better validation score
    batch_size: int = 128  # images per batch (each with one caption drawn anew each epoch, or all: captions)
    lr: float = 1e-3  # AdamW learning rate
    weight_decay: float = 1e-4  # AdamW weight decay
    # cca (and init=cca): ridge on each covariance, relative to its mean eigenvalue, and the power of
    # its canonical correlation that weighs each direction (1 and 2 won on the captions training folds)
    regularisation: float = 1.0
    power: float = 2.0
    init: str = "random"  # triplet/infonce: start from random heads, or from the CCA solution ("cca")
    seed: int = 0  # initial weights and batches
    ensemble: int = 1  # triplet/infonce: train this many pairs of heads (seeds seed, seed+1, ...) and join them
    # hubness correction (CSLS): a candidate's score drops by half its mean cosine to its `hubness`
    # nearest training items of the other modality; 0 = plain cosine
    hubness: int = 0


class ProjectionHead(nn.Module):
    """``[B, in_dim]`` -> ``[B, dim]`` L2-normalised: centre, then linear or linear-ReLU-linear."""

    def __init__(self, in_dim: int, dim: int, hidden: int = 0, dropout: float = 0.0) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(in_dim))
        self.dropout = nn.Dropout(dropout)
        if hidden:
            self.layers = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, dim))
        else:
            self.layers = nn.Sequential(nn.Linear(in_dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.layers(self.dropout(x - self.mean)), dim=-1)


class Ensemble(nn.Module):
    """Heads side by side: their L2-normalised outputs concatenated and divided by ``sqrt(k)``, so
    that a row has unit norm and the cosine of two rows is the mean of the members' cosines."""

    def __init__(self, members: list[ProjectionHead]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    @property
    def mean(self) -> torch.Tensor:
        return self.members[0].mean

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([member(x) for member in self.members], dim=-1) / len(self.members) ** 0.5


class JointEmbedding:
    """Image and text heads into one space.

    Args:
        config: a :class:`JointConfig`, updated by ``overrides``.
        image_spec: the spec of the image descriptor whose vectors the image head reads.
        text_spec: the spec of the text encoder whose rows the text head reads.
    """

    def __init__(self, config: JointConfig | None = None, /, *, image_spec: dict | None = None,
                 text_spec: dict | None = None, **overrides: Any) -> None:
        fields = {f.name for f in dataclasses.fields(JointConfig)}
        unknown = sorted(set(overrides) - fields)
        if unknown:
            raise LookalikeError(f"joint: unknown option(s) {', '.join(unknown)}; valid: {', '.join(sorted(fields))}")
        self.config = dataclasses.replace(config or JointConfig(), **overrides)
        self.image_spec = image_spec or {}
        self.text_spec = text_spec or {}
        c = self.config
        if c.method not in METHODS:
            raise LookalikeError(f"joint: method must be one of {', '.join(METHODS)}, not {c.method!r}")
        if not set(c.losses) <= set(LOSSES) or not c.losses:
            raise LookalikeError(f"joint: losses must be a non-empty subset of {', '.join(LOSSES)}, not {c.losses}")
        if c.init not in ("random", "cca") or (c.init == "cca" and c.hidden):
            raise LookalikeError(f"joint: init must be random or cca (linear heads only), not {c.init!r}")
        if c.captions not in CAPTIONS:
            raise LookalikeError(f"joint: captions must be one of {', '.join(CAPTIONS)}, not {c.captions!r}")
        if c.augment not in AUGMENTS:
            raise LookalikeError(f"joint: augment must be one of {', '.join(AUGMENTS)}, not {c.augment!r}")
        if not c.temperature > 0:
            raise LookalikeError(f"joint: temperature must be > 0, got {c.temperature}")
        if not 0.0 <= c.dropout < 1.0:
            raise LookalikeError(f"joint: dropout must be in [0, 1), got {c.dropout}")
        if c.hubness < 0:
            raise LookalikeError(f"joint: hubness must be >= 0 (0 = off), got {c.hubness}")
        if c.ensemble < 1 or (c.ensemble > 1 and c.method == "cca"):
            raise LookalikeError(f"joint: ensemble must be >= 1, and 1 for cca (a closed form), got {c.ensemble}")
        if c.dim < 1 or c.hidden < 0 or c.epochs < 1 or c.batch_size < 2:
            raise LookalikeError(f"joint: need dim >= 1, hidden >= 0, epochs >= 1 and batch_size >= 2, got "
                                 f"{c.dim}, {c.hidden}, {c.epochs}, {c.batch_size}")

    # ---- learning ------------------------------------------------------------------------
    def fit(self, images: np.ndarray, texts: np.ndarray, owner: np.ndarray, *,
            caption_vectors: np.ndarray | None = None, views: np.ndarray | None = None,
            validation: tuple | None = None, checkpoint: str | Path | None = None, resume: bool = False,
            device: str = "cpu", progress: bool = True) -> JointEmbedding:
        """Learn the heads.

        Args:
            images: [N, Dx] image descriptors; texts: [M, Dt] caption embeddings; owner: [M] the
                image of each caption.
            caption_vectors: [N, Dc] L2-normalised description of each image's captions (tf-idf of
                its captions joined); the visual loss takes caption similarity from it.
            views: [N, V, Dx] what each of the ``V`` views of each image (scales, mirror image) gives
                alone; with ``augment="views"`` training draws one per image and batch (CCA
                takes them all).
            validation: ``(images, texts, owner)`` of held-out images: the epoch whose
                :func:`~lookalike.crossmodal.metrics.text_image_retrieval` RSUM is best is kept,
                and training stops after ``patience`` epochs without progress.
            checkpoint: file written after every epoch; with ``resume``, training goes on from it.
            device: ``cpu`` or ``cuda``.

        Sets ``image_head_``, ``text_head_``, ``history_`` (one dict per epoch) and ``report_``.
        """
        images, texts, owner = _check_pairs(images, texts, owner)
        if validation is not None:
            validation = _check_pairs(*validation)
        c = self.config
        if c.augment == "views":
            if views is None:
                raise LookalikeError("joint: augment=views needs the views of each training image (views=)")
            views = np.ascontiguousarray(views, dtype=np.float32)
            if views.ndim != 3 or views.shape[0] != len(images) or views.shape[2] != images.shape[1]:
                raise LookalikeError(f"joint: views must be (N, V, {images.shape[1]}) for {len(images)} images, "
                                     f"got {views.shape}")
        self.bank_ = (torch.tensor(images), torch.tensor(texts)) if c.hubness else None
        self._bank_rows = None
        if c.ensemble > 1:
            return self._fit_ensemble(images, texts, owner, caption_vectors=caption_vectors, views=views,
                                      validation=validation, checkpoint=checkpoint, resume=resume, device=device,
                                      progress=progress)
        torch.manual_seed(c.seed)
        self.image_head_ = ProjectionHead(images.shape[1], c.dim, c.hidden, c.dropout)
        self.text_head_ = ProjectionHead(texts.shape[1], c.dim, c.hidden, c.dropout)
        if c.method == "cca" or c.init == "cca":
            self._fit_cca(images, texts, owner, views)
        if c.method == "cca":
            self.history_, self.report_ = [], {"method": "cca", "images": len(images), "captions": len(texts)}
            return self
        if "visual" in c.losses and c.method == "triplet" and caption_vectors is None:
            raise LookalikeError("joint: the visual loss needs caption_vectors (each image's captions, as tf-idf)")
        from lookalike.crossmodal.training import train_heads

        self.history_, self.report_ = train_heads(
            self, images, texts, owner, caption_vectors=caption_vectors, views=views, validation=validation,
            checkpoint=checkpoint, resume=resume, device=device, progress=progress)
        return self

    def _fit_ensemble(self, images, texts, owner, *, checkpoint, validation, **options) -> JointEmbedding:
        """Train ``ensemble`` members, each as a model of its own with the next seed (and its own
        checkpoint ``<checkpoint>-<i>``), and join their heads."""
        c = self.config
        members = []
        for i in range(c.ensemble):
            member = JointEmbedding(dataclasses.replace(c, ensemble=1, seed=c.seed + i))
            members.append(member.fit(images, texts, owner, validation=validation, **options,
                                      checkpoint=checkpoint and f"{checkpoint}-{i}"))
        self.image_head_ = Ensemble([m.image_head_ for m in members])
        self.text_head_ = Ensemble([m.text_head_ for m in members])
        self.history_ = members[0].history_
        self.report_ = {**members[0].report_, "members": [m.report_ for m in members],
                        "train_seconds": sum(m.report_["train_seconds"] for m in members)}
        if validation is not None:
            from lookalike.crossmodal.training import validation_score

            self.report_["validation_rsum"] = validation_score(self, validation)
        return self

    def _fit_cca(self, images: np.ndarray, texts: np.ndarray, owner: np.ndarray, views: np.ndarray | None) -> None:
        c = self.config
        dim = min(c.dim, images.shape[1], texts.shape[1])
        x, y = images[owner], texts
        if views is not None and c.augment == "views":  # each view of an image is one more pair per caption
            x = np.concatenate([x, *views[owner].transpose(1, 0, 2)])
            y = np.concatenate([y] * (1 + views.shape[1]))
        mean_x, w_x, mean_y, w_y, correlations = cca(x, y, dim, c.regularisation)
        weight = np.maximum(correlations, 0.0) ** c.power
        self.config = dataclasses.replace(c, dim=dim, hidden=0)
        for head, rows, mean, w in ((self.image_head_, images, mean_x, w_x), (self.text_head_, texts, mean_y, w_y)):
            w = w * weight
            # scaled so that projected rows have unit norm on average: the cosine ignores the scale,
            # and a training that starts from here takes steps of a sensible size
            w /= max(np.linalg.norm((rows - mean) @ w, axis=1).mean(), 1e-12)
            linear = nn.Linear(len(mean), dim)
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(w.T))
                linear.bias.zero_()
                head.mean.copy_(torch.from_numpy(mean))
            head.layers = nn.Sequential(linear)

    # ---- using -------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        """Dimension of the joint-space rows (``dim`` times ``ensemble``)."""
        return self.config.dim * self.config.ensemble

    @property
    def fitted(self) -> bool:
        return hasattr(self, "image_head_")

    def encode_images(self, vectors: np.ndarray) -> np.ndarray:
        """``[N, Dx]`` image descriptors -> ``[N, dim]`` float32 joint-space rows."""
        return self._apply(self._head("image_head_"), vectors, "image")

    def encode_texts(self, vectors: np.ndarray) -> np.ndarray:
        """``[M, Dt]`` text embeddings -> ``[M, dim]`` float32 joint-space rows."""
        return self._apply(self._head("text_head_"), vectors, "text")

    # ---- the hubness correction ----------------------------------------------------------
    def image_penalties(self, rows: np.ndarray) -> np.ndarray:
        """``[N]`` what to subtract from the scores of joint-space image ``rows`` as candidates of a
        text (or any joint-space) query: half their mean cosine to their ``hubness`` nearest training
        captions (CSLS, Lample et al., ICLR 2018, "Word translation without parallel data"). An
        image close to many captions, a hub, would otherwise come up for every query. Zeros when off."""
        return self._penalties(rows, 1)

    def text_penalties(self, rows: np.ndarray) -> np.ndarray:
        """``[M]`` the same for joint-space caption ``rows`` as candidates of an image query, against
        the training images."""
        return self._penalties(rows, 0)

    def _penalties(self, rows: np.ndarray, side: int) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.float32)
        if not self.config.hubness:
            return np.zeros(len(rows), np.float32)
        if getattr(self, "_bank_rows", None) is None:
            images, texts = self.bank_
            self._bank_rows = (self.encode_images(images.numpy()), self.encode_texts(texts.numpy()))
        bank = torch.from_numpy(self._bank_rows[side])
        k = min(self.config.hubness, len(bank))
        nearest = torch.topk(torch.from_numpy(rows) @ bank.T, k, dim=1).values
        return (HUBNESS_WEIGHT * nearest.mean(dim=1)).numpy()

    def _head(self, name: str) -> ProjectionHead | Ensemble:
        if not self.fitted:
            raise LookalikeError("joint: not fitted; call fit() or JointEmbedding.load(path)")
        return getattr(self, name)

    @staticmethod
    def _apply(head: ProjectionHead | Ensemble, vectors: np.ndarray, what: str) -> np.ndarray:
        vectors = np.array(vectors, dtype=np.float32)  # a writable copy: torch shares its memory
        if vectors.ndim != 2 or vectors.shape[1] != head.mean.shape[0]:
            raise LookalikeError(f"joint: {what} vectors must be (N, {head.mean.shape[0]}), got {vectors.shape}")
        head = head.to("cpu").eval()
        with torch.no_grad():
            return np.ascontiguousarray(head(torch.from_numpy(vectors)).numpy())

    @property
    def image_descriptor(self):
        """The registered image descriptor the image head reads."""
        from lookalike.descriptors.registry import from_spec

        if not self.image_spec:
            raise LookalikeError("joint: this model names no image descriptor")
        return from_spec(self.image_spec)

    @property
    def text_encoder(self):
        """The text encoder the text head reads."""
        from lookalike.crossmodal.text import text_encoder_from_spec

        if not self.text_spec:
            raise LookalikeError("joint: this model names no text encoder")
        return text_encoder_from_spec(self.text_spec)

    # ---- saving --------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """The JSON-able part of the saved file: config, specs, input dimensions, training report."""
        return {
            "format": FORMAT, "format_version": FORMAT_VERSION,
            "config": dataclasses.asdict(self.config),
            "image": self.image_spec, "text": self.text_spec,
            "image_dim": int(self._head("image_head_").mean.shape[0]), "text_dim": int(self.text_head_.mean.shape[0]),
            "report": getattr(self, "report_", {}),
        }

    def state(self) -> dict[str, torch.Tensor]:
        """Both heads' tensors, named ``image.*`` and ``text.*``, and with ``hubness`` the training
        rows the correction compares with, ``bank.images`` and ``bank.texts`` (the heads' inputs)."""
        state = {f"{side}.{k}": v.detach().cpu().clone() for side in ("image", "text")
                 for k, v in getattr(self, f"{side}_head_").state_dict().items()}
        if self.config.hubness:
            state["bank.images"], state["bank.texts"] = self.bank_
        return state

    def save(self, path: str | Path) -> Path:
        """Write the model to ``path`` atomically (one ``torch.save`` file); return the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        torch.save({"config": json.dumps(self.describe()), "state": self.state()}, tmp)
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> JointEmbedding:
        """Read a model written by :meth:`save` (tensors only: ``torch.load(weights_only=True)``)."""
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
            meta = json.loads(data["config"])
            state = data["state"]
        except FileNotFoundError:
            raise LookalikeError(f"{path}: no such joint model; train one with `lookalike train-joint`") from None
        except Exception as exc:  # noqa: BLE001 - pickle, zip and JSON each raise their own
            raise LookalikeError(f"{path}: not a lookalike joint model ({type(exc).__name__}: {exc})") from None
        if meta.get("format") != FORMAT or meta.get("format_version", 0) > FORMAT_VERSION:
            raise LookalikeError(f"{path}: not a joint model this lookalike can read (format {meta.get('format')!r}, "
                                 f"version {meta.get('format_version')})")
        config = {k: tuple(v) if isinstance(v, list) else v for k, v in meta["config"].items()}
        model = cls(JointConfig(**config), image_spec=meta["image"], text_spec=meta["text"])
        c = model.config
        for side in ("image", "text"):
            heads = [ProjectionHead(meta[f"{side}_dim"], c.dim, c.hidden, c.dropout) for _ in range(c.ensemble)]
            setattr(model, f"{side}_head_", heads[0] if c.ensemble == 1 else Ensemble(heads))
        for side in ("image", "text"):
            prefix = side + "."
            getattr(model, f"{side}_head_").load_state_dict(
                {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
        model.bank_ = (state["bank.images"], state["bank.texts"]) if c.hubness else None
        model.report_, model.history_ = meta.get("report", {}), []
        return model


def _check_pairs(images, texts, owner) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    images = np.ascontiguousarray(images, dtype=np.float32)
    texts = np.ascontiguousarray(texts, dtype=np.float32)
    owner = np.asarray(owner, dtype=np.int64)
    if images.ndim != 2 or texts.ndim != 2 or owner.shape != (len(texts),):
        raise LookalikeError(f"joint: need images (N, Dx), texts (M, Dt) and owner (M,), got "
                             f"{images.shape}, {texts.shape}, {owner.shape}")
    if len(owner) and (owner.min() < 0 or owner.max() >= len(images)):
        raise LookalikeError(f"joint: owner indices must be in [0, {len(images)})")
    if len(images) < 2:
        raise LookalikeError(f"joint: need at least 2 captioned images, got {len(images)}")
    return images, texts, owner
