"""The zero-shot bridge: no captions at all, only the ImageNet classifier of the shipped CNN.

The classifier gives each image a probability for each of the 1,000 ImageNet classes; the text
encoder embeds each class name (``"a photo of a {name}."``); an image's text vector is the
probability-weighted mean of the embeddings of its ``top`` classes (the idea of ConSE, Norouzi et
al., ICLR 2014). A query sentence is embedded by the same text encoder, so text->image and
image->text both rank by cosine in the text encoder's space.

It finds what the 1,000 classes can name (dog breeds, vehicles, food, many objects and some
scenes: "a dog", "a bicycle", "a pizza", "a seashore") and nothing they cannot: people (ImageNet
has no "person" class), actions ("jumping", "playing"), counts ("two dogs"), colours of things,
relations ("a man on a bike").
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import numpy as np

from lookalike.crossmodal.text import TextEncoder
from lookalike.errors import LookalikeError
from lookalike.norms import l2_normalise

TEMPLATE = "a photo of a {}."


@lru_cache(maxsize=1)
def class_names() -> tuple[str, ...]:
    """The 1,000 ImageNet-1k class names, in the classifier's output order."""
    text = (resources.files("lookalike.crossmodal") / "data" / "imagenet_classes.txt").read_text(encoding="utf-8")
    names = tuple(line.strip() for line in text.splitlines() if line.strip())
    assert len(names) == 1000, len(names)
    return names


def classifier_logits(descriptor, pixels: np.ndarray) -> np.ndarray:
    """The ImageNet logits ``(1000,)`` of one image ``[H, W, 3]`` uint8, through a ``cnn-fc`` descriptor's
    network (a module-level function, so that extraction workers can run it)."""
    import torch

    from lookalike.descriptors.cnn.backbone import load_backbone

    classifier = load_backbone(descriptor.config.backbone, descriptor.config.weights).classifier
    if classifier is None:
        raise LookalikeError(f"backbone {descriptor.config.backbone} has no ImageNet classifier")
    pooled = descriptor.feature_map(descriptor.prepare(pixels)[0]).mean(dim=(1, 2))
    with torch.no_grad():
        return classifier(pooled[None])[0].numpy().astype(np.float32)


class ZeroShotBridge:
    """Images and sentences in a text encoder's space, through the classifier's class names.

    Args:
        text_encoder: embeds the class names and the queries.
        top: classes kept per image (the others are noise that blurs the vector).
    """

    def __init__(self, text_encoder: TextEncoder, top: int = 5) -> None:
        if top < 1:
            raise LookalikeError(f"zero-shot: top must be >= 1, got {top}")
        self.text_encoder = text_encoder
        self.top = top

    @property
    def class_embeddings(self) -> np.ndarray:
        """``(1000, D)`` embeddings of the class-name sentences."""
        if not hasattr(self, "_classes"):
            self._classes = self.text_encoder.encode([TEMPLATE.format(n) for n in class_names()])
        return self._classes

    def encode_images(self, logits: np.ndarray) -> np.ndarray:
        """``(N, 1000)`` classifier logits -> ``(N, D)`` L2-normalised text-space rows."""
        logits = np.asarray(logits, dtype=np.float64)
        if logits.ndim != 2 or logits.shape[1] != 1000:
            raise LookalikeError(f"zero-shot: logits must be (N, 1000), got {logits.shape}")
        probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        threshold = -np.sort(-probabilities, axis=1)[:, self.top - 1:self.top]
        probabilities[probabilities < threshold] = 0.0
        rows = (probabilities @ self.class_embeddings).astype(np.float32)
        return l2_normalise(rows)

    def encode_texts(self, sentences) -> np.ndarray:
        return self.text_encoder.encode(sentences)
