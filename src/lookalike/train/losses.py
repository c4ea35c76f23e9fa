"""Ranking losses over tuples (query, positive, negatives) of L2-normalised descriptors.

A tuple is ``query [B, D]``, ``positive [B, D]`` and ``negatives [B, K, D]``: B tuples, each with
one matching image and K non-matching ones (hard negatives, :mod:`lookalike.train.mining`). Both
losses sum over the pairs of a tuple and average over tuples, as cirtorch does per tuple.
"""

from __future__ import annotations

import torch


def _check(query: torch.Tensor, positive: torch.Tensor, negatives: torch.Tensor) -> None:
    if query.ndim != 2 or positive.shape != query.shape or negatives.ndim != 3 \
            or negatives.shape[0] != query.shape[0] or negatives.shape[2] != query.shape[1]:
        raise ValueError(f"expected query [B, D], positive [B, D], negatives [B, K, D]; got "
                         f"{tuple(query.shape)}, {tuple(positive.shape)}, {tuple(negatives.shape)}")


def contrastive_loss(query: torch.Tensor, positive: torch.Tensor, negatives: torch.Tensor,
                     margin: float = 0.75) -> torch.Tensor:
    """Contrastive loss (Hadsell et al. CVPR 2006; Radenović et al. ECCV 2016 / PAMI 2018).

    Per tuple: ``d(q, p)^2 / 2 + sum_k max(0, margin - d(q, n_k))^2 / 2``, with ``d`` the Euclidean
    distance of unit vectors (0..2): matching pairs are pulled together, non-matching ones pushed
    apart until they are ``margin`` away, and then left alone. Mean over the B tuples.
    """
    _check(query, positive, negatives)
    pull = (query - positive).pow(2).sum(dim=1)
    distances = (query[:, None, :] - negatives).pow(2).sum(dim=2).clamp(min=1e-12).sqrt()  # [B, K]
    push = (margin - distances).clamp(min=0).pow(2).sum(dim=1)
    return 0.5 * (pull + push).mean()


def triplet_loss(query: torch.Tensor, positive: torch.Tensor, negatives: torch.Tensor,
                 margin: float = 0.1) -> torch.Tensor:
    """Triplet (ranking) loss (Schroff et al. CVPR 2015; Gordo et al. IJCV 2017) on squared distances.

    Per tuple: ``sum_k max(0, d(q, p)^2 - d(q, n_k)^2 + margin)``: each negative must be farther
    from the query than the positive, by ``margin``. Only the order matters, not absolute
    distances. Mean over the B tuples.
    """
    _check(query, positive, negatives)
    to_positive = (query - positive).pow(2).sum(dim=1, keepdim=True)  # [B, 1]
    to_negatives = (query[:, None, :] - negatives).pow(2).sum(dim=2)  # [B, K]
    return (to_positive - to_negatives + margin).clamp(min=0).sum(dim=1).mean()
