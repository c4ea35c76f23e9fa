"""Hard-negative mining: the hardest images of other classes, one per class, never a positive."""

from __future__ import annotations

import numpy as np
import torch

from lookalike.train.mining import hardest_negatives, random_negatives, random_positives


def unit(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(x, dim=1)


def test_hardest_negatives_are_the_most_similar_of_other_classes_one_per_class():
    generator = torch.Generator().manual_seed(0)
    pool_labels = torch.randint(0, 12, (300,), generator=generator)
    pool = unit(torch.randn(300, 16, generator=generator) + torch.randn(12, 16, generator=generator)[pool_labels])
    query_labels = pool_labels[:40]
    queries = pool[:40]
    chosen = hardest_negatives(queries, query_labels, pool, pool_labels, count=5)
    assert chosen.shape == (40, 5) and (chosen >= 0).all()
    labels = pool_labels[chosen]
    assert not (labels == query_labels[:, None]).any()  # never a positive (nor the query itself)
    assert all(len(set(row.tolist())) == 5 for row in labels)  # at most one per class
    similarity = queries @ pool.T
    picked = similarity.gather(1, chosen)
    assert (picked[:, :-1] >= picked[:, 1:]).all()  # hardest first
    for q in range(40):  # the first one is the most similar pool image of any other class
        others = pool_labels != query_labels[q]
        assert picked[q, 0] == similarity[q, others].max()
        # and each is the most similar image of its own class
        for index in chosen[q]:
            same = pool_labels == pool_labels[index]
            assert similarity[q, index] == similarity[q, same].max()


def test_rows_are_padded_when_there_are_too_few_other_classes():
    pool = unit(torch.eye(4))
    labels = torch.tensor([0, 0, 1, 2])
    chosen = hardest_negatives(pool[:1], labels[:1], pool, labels, count=4)
    assert sorted(chosen[0, :2].tolist()) == [2, 3] and chosen[0, 2:].tolist() == [-1, -1]


def test_random_negatives_and_positives():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(6), 5)
    queries = rng.choice(len(labels), 20, replace=False)
    negatives = random_negatives(labels[queries], labels, 4, rng)
    assert not (labels[negatives] == labels[queries][:, None]).any()
    assert all(len(set(row)) == 4 for row in labels[negatives])
    positives = random_positives(queries, labels, rng)
    assert (labels[positives] == labels[queries]).all() and (positives != queries).all()
