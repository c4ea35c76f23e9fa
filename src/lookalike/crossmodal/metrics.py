"""Recall@K and median rank of text->image and image->text retrieval.

The standard protocol (Hodosh et al., JAIR 2013; Karpathy & Fei-Fei, CVPR 2015): every caption
retrieves among the images (one relevant), every image retrieves among the captions (its own
captions relevant, counted from the first one found). Ties are broken by index (a stable sort)
so that runs reproduce.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

KS = (1, 5, 10)


def first_relevant_ranks(similarity: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    """1-based rank of the first relevant item of each query.

    Args:
        similarity: [Q, G] scores, higher first.
        relevant: [Q, G] bool; a query with no relevant item gets rank G + 1.
    """
    if similarity.shape != relevant.shape:
        raise ValueError(f"similarity {similarity.shape} and relevant {relevant.shape} differ")
    order = np.argsort(-similarity, axis=1, kind="stable")
    hits = np.take_along_axis(relevant, order, axis=1)
    found = hits.any(axis=1)
    return np.where(found, hits.argmax(axis=1) + 1, similarity.shape[1] + 1)


def recall_summary(ranks: np.ndarray, ks: Sequence[int] = KS) -> dict[str, float]:
    """``{"r@1": ..., "r@5": ..., "r@10": ..., "median_rank": ...}`` of 1-based ranks."""
    ranks = np.asarray(ranks)
    summary = {f"r@{k}": float((ranks <= k).mean()) for k in ks}
    summary["median_rank"] = float(np.median(ranks))
    return summary


def text_image_retrieval(images: np.ndarray, texts: np.ndarray, owner: np.ndarray, ks: Sequence[int] = KS, *,
                         image_penalties: np.ndarray | None = None,
                         text_penalties: np.ndarray | None = None) -> dict[str, dict[str, float]]:
    """Both directions of the protocol on embeddings in one space.

    Args:
        images: [N, D] image embeddings; texts: [M, D] caption embeddings (cosine = inner product
            of L2-normalised rows); owner: [M] index of the image each caption describes.
        image_penalties: [N] subtracted from every caption's score of each image (text->image);
            text_penalties: [M] from every image's score of each caption (image->text): the
            joint model's hubness correction.

    Returns:
        ``{"t2i": {...}, "i2t": {...}, "rsum": float}`` with :func:`recall_summary` in each direction.
    """
    owner = np.asarray(owner)
    similarity = texts @ images.T
    relevant = owner[:, None] == np.arange(len(images))[None, :]
    to_images = similarity if image_penalties is None else similarity - np.asarray(image_penalties)[None, :]
    to_texts = similarity.T if text_penalties is None else similarity.T - np.asarray(text_penalties)[None, :]
    t2i = recall_summary(first_relevant_ranks(to_images, relevant), ks)
    i2t = recall_summary(first_relevant_ranks(to_texts, relevant.T), ks)
    rsum = sum(v for d in (t2i, i2t) for key, v in d.items() if key.startswith("r@"))
    return {"t2i": t2i, "i2t": i2t, "rsum": float(rsum)}
