"""Recall@K and median rank on hand-made rankings."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.crossmodal.metrics import first_relevant_ranks, recall_summary, text_image_retrieval


def test_first_relevant_rank_breaks_ties_by_index():
    similarity = np.array([[0.1, 0.9, 0.5, 0.9], [0.3, 0.2, 0.1, 0.0], [1.0, 0.0, 0.0, 0.0]])
    relevant = np.zeros((3, 4), bool)
    relevant[0, 3] = True  # tied with item 1, which comes first
    relevant[1, [2, 3]] = True  # the first of the two is at position 3
    ranks = first_relevant_ranks(similarity, relevant)  # query 2 has none: G + 1
    assert ranks.tolist() == [2, 3, 5]


def test_recall_summary():
    summary = recall_summary(np.array([1, 2, 6, 11]), ks=(1, 5, 10))
    assert summary == {"r@1": 0.25, "r@5": 0.5, "r@10": 0.75, "median_rank": 4.0}


def test_text_image_retrieval_both_directions():
    images = np.eye(3, dtype=np.float32)
    # captions 0,1 describe image 0; caption 2 image 1; caption 3 image 2 but looks like image 1
    texts = np.array([[1, 0, 0], [0, 0.6, 0.8], [0, 1, 0], [0, 0.8, 0.6]], np.float32)
    owner = np.array([0, 0, 1, 2])
    result = text_image_retrieval(images, texts, owner, ks=(1, 2))
    # t2i ranks: caption0 -> 1, caption1 -> image0 scores 0, below images 2 (0.8) and 1 (0.6): 3; caption2 -> 1;
    # caption3 -> image2 (0.6) after image1 (0.8): 2
    assert result["t2i"] == {"r@1": 0.5, "r@2": 0.75, "median_rank": 1.5}
    # i2t: image0 -> caption0 first: 1; image1 -> caption2 (1.0) first: 1; image2 -> caption1 (0.8) then caption3: 2
    assert result["i2t"] == pytest.approx({"r@1": 2 / 3, "r@2": 1.0, "median_rank": 1.0})
    assert result["rsum"] == pytest.approx(0.5 + 0.75 + 2 / 3 + 1.0)
