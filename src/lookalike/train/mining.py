"""Choosing the tuples: positives of the same class, and hard negatives as in cirtorch.

Hard-negative mining (Radenović et al. ECCV 2016): every epoch, describe a random pool of images
with the current network, and give each query the pool images most similar to it among those of
other classes, at most one per class, so that the K negatives are K different confusions rather
than K views of one confusing object.
"""

from __future__ import annotations

import numpy as np
import torch


def hardest_negatives(queries: torch.Tensor, query_labels: torch.Tensor, pool: torch.Tensor,
                      pool_labels: torch.Tensor, count: int) -> torch.Tensor:
    """Indices ``[Q, count]`` into ``pool`` of each query's hardest negatives, hardest first.

    Args:
        queries: ``[Q, D]`` L2-normalised query descriptors, ``query_labels`` ``[Q]`` int classes.
        pool: ``[P, D]`` L2-normalised pool descriptors, ``pool_labels`` ``[P]`` int classes.
        count: negatives per query; at most one per class and never of the query's class. Where
            the pool holds fewer other classes than ``count``, the row is padded with -1.
    """
    classes = int(max(query_labels.max(), pool_labels.max())) + 1
    order = (queries @ pool.T).argsort(dim=1, descending=True)  # [Q, P], most similar first
    ranked_labels = pool_labels[order]
    positions = torch.arange(order.shape[1]).expand_as(order)
    # the best-ranked pool image of each class, per query; P where the class is absent
    first = torch.full((len(queries), classes), order.shape[1], dtype=torch.long)
    first = first.scatter_reduce(1, ranked_labels, positions, reduce="amin")
    first[torch.arange(len(queries)), query_labels] = order.shape[1]  # never the query's own class
    picked = first.sort(dim=1).values[:, :count]  # the classes met first, in rank order
    found = picked < order.shape[1]
    indices = order.gather(1, picked.clamp(max=order.shape[1] - 1))
    indices = torch.where(found, indices, torch.full_like(indices, -1))
    if indices.shape[1] < count:
        indices = torch.cat([indices, indices.new_full((len(queries), count - indices.shape[1]), -1)], dim=1)
    return indices


def random_negatives(query_labels: np.ndarray, labels: np.ndarray, count: int,
                     rng: np.random.Generator) -> np.ndarray:
    """Indices ``(Q, count)`` of random images of other classes, at most one per class (no mining)."""
    classes = np.unique(labels)
    members = {c: np.flatnonzero(labels == c) for c in classes}
    out = np.full((len(query_labels), count), -1, dtype=np.int64)
    for row, label in enumerate(query_labels):
        others = rng.permutation(classes[classes != label])[:count]
        out[row, :len(others)] = [rng.choice(members[c]) for c in others]
    return out


def random_positives(query_indices: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For each query index, another image of its class chosen at random (itself if it is alone)."""
    out = np.empty(len(query_indices), dtype=np.int64)
    for row, query in enumerate(query_indices):
        same = np.flatnonzero(labels == labels[query])
        same = same[same != query]
        out[row] = rng.choice(same) if len(same) else query
    return out
