"""Losses of the joint embedding, as pure functions of similarity matrices.

Gordo & Larlus, "Beyond instance-level image retrieval: leveraging captions to learn a global
visual representation for semantic retrieval" (CVPR 2017) train with three margin (triplet)
losses: a visual one, whose positive image has captions more similar to the anchor's than the
negative's, and the two cross-modal ones, image->text and text->image. Here every negative comes
from the batch and the hardest one is used (Faghri et al., VSE++, BMVC 2018), or all of them
(``hardest=False``). The symmetric InfoNCE loss (Oord et al. 2018; CLIP, Radford et al. 2021) is
the comparison. All embeddings are L2-normalised, so similarities are cosines.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _hinge(positive: torch.Tensor, negatives: torch.Tensor, valid: torch.Tensor, margin: float,
           hardest: bool) -> torch.Tensor:
    """Mean over anchors of ``max(0, margin - positive + negative)``, hardest or averaged over valid negatives.

    positive: [B]; negatives, valid: [B, B]. Anchors without any valid negative do not count.
    """
    violation = F.relu(margin - positive[:, None] + negatives).masked_fill(~valid, 0.0)
    has = valid.any(dim=1)
    if not has.any():
        return positive.sum() * 0.0
    if hardest:
        per_anchor = violation.max(dim=1).values
    else:
        per_anchor = violation.sum(dim=1) / valid.sum(dim=1).clamp(min=1)
    return per_anchor[has].mean()


def cross_modal_triplet_loss(similarity: torch.Tensor, margin: float = 0.2, *, hardest: bool = True,
                             positives: torch.Tensor | None = None) -> torch.Tensor:
    """Triplet loss of queries against the targets of a batch.

    Args:
        similarity: [Q, G] cosine of query ``i`` (an image for image->text) and target ``j`` (a
            text); pass its transpose for text->image.
        margin: the hinge's margin.
        hardest: use only the most similar wrong target of each query (VSE++), else the mean over
            all wrong targets.
        positives: [Q, G] bool, the right targets of each query; by default the diagonal of a
            square matrix (row ``i``'s positive is column ``i``). Every positive pair is one
            triplet term against its query's wrong targets; the loss is their mean.
    """
    if positives is None:
        if similarity.ndim != 2 or similarity.shape[0] != similarity.shape[1]:
            raise ValueError(f"similarity must be a square [B, B] matrix, got {tuple(similarity.shape)}")
        positives = torch.eye(len(similarity), dtype=torch.bool, device=similarity.device)
    if positives.shape != similarity.shape or similarity.ndim != 2:
        raise ValueError(f"positives {tuple(positives.shape)} must match similarity {tuple(similarity.shape)}")
    query, target = positives.nonzero(as_tuple=True)
    return _hinge(similarity[query, target], similarity[query], ~positives[query], margin, hardest)


def visual_triplet_loss(embeddings: torch.Tensor, caption_similarity: torch.Tensor, margin: float = 0.2, *,
                        hardest: bool = True) -> torch.Tensor:
    """The visual triplet loss of Gordo & Larlus within a batch.

    For each anchor image, the positive is the other image of the batch whose captions are most
    similar to the anchor's, and the negatives are the images whose captions are less similar than
    the positive's (ties are not negatives).

    Args:
        embeddings: [B, D] L2-normalised image embeddings.
        caption_similarity: [B, B] similarity of the images' captions (tf-idf cosine in the paper).
    """
    n = len(embeddings)
    if caption_similarity.shape != (n, n):
        raise ValueError(f"caption_similarity must be [{n}, {n}], got {tuple(caption_similarity.shape)}")
    eye = torch.eye(n, dtype=torch.bool, device=embeddings.device)
    captions = caption_similarity.masked_fill(eye, float("-inf"))
    best, positive = captions.max(dim=1)
    visual = embeddings @ embeddings.T
    rows = torch.arange(n, device=embeddings.device)
    valid = (captions < best[:, None]) & ~eye
    return _hinge(visual[rows, positive], visual, valid, margin, hardest)


def info_nce_loss(similarity: torch.Tensor, temperature: float | torch.Tensor = 0.05, *,
                  positives: torch.Tensor | None = None) -> torch.Tensor:
    """Symmetric InfoNCE: cross-entropy of each image row and each text column against its pairs.

    Args:
        similarity: [B, M] cosine of image ``i`` and text ``j``; by default ``M = B`` and the
            pairs lie on the diagonal.
        temperature: the softmax temperature (a tensor when it is learnt).
        positives: [B, M] bool, the texts of each image (each text has exactly one image). An image
            with several texts scores ``-log`` of the softmax mass on all of them (the sum inside
            the log: any of its captions may come first, as the image->text recall counts); each
            text is one cross-entropy over the images.
    """
    if positives is None:
        positives = torch.eye(len(similarity), dtype=torch.bool, device=similarity.device)
    if positives.shape != similarity.shape or similarity.ndim != 2:
        raise ValueError(f"positives {tuple(positives.shape)} must match similarity {tuple(similarity.shape)}")
    logits = similarity / temperature
    image_to_text = -torch.logsumexp(logits.log_softmax(dim=1).masked_fill(~positives, float("-inf")), dim=1)
    text_to_image = F.cross_entropy(logits.T, positives.T.float().argmax(dim=1))
    return (image_to_text.mean() + text_to_image) / 2
