"""Query expansion and DBA on cases computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.errors import LookalikeError
from lookalike.rerank.expansion import alpha_query_expansion, average_query_expansion, database_augmentation

pytest.importorskip("faiss")

S = np.sqrt(0.5)
DATABASE = np.array([[1, 0, 0], [S, S, 0], [0, 1, 0], [0, 0, 1]], np.float32)


def test_average_query_expansion_by_hand():
    query = np.array([[1, 0, 0]], np.float32)
    expanded = average_query_expansion(query, DATABASE, np.array([[0, 1]]))
    # q + x0 + x1 = (2 + s, s, 0)
    expected = np.array([2 + S, S, 0]) / np.hypot(2 + S, S)
    np.testing.assert_allclose(expanded[0], expected, rtol=1e-6)


def test_alpha_query_expansion_by_hand_and_alpha_zero_is_aqe():
    query = np.array([[1, 0, 0]], np.float32)
    neighbours, sims = np.array([[1, 2]]), np.array([[S, 0.5]], np.float32)
    expanded = alpha_query_expansion(query, DATABASE, neighbours, sims, alpha=3.0)
    # q + s^3 x1 + 0.5^3 x2 = (1 + s^4, s^4 + 0.125, 0)
    raw = np.array([1 + S**4, S**4 + 0.125, 0])
    np.testing.assert_allclose(expanded[0], raw / np.linalg.norm(raw), rtol=1e-6)
    np.testing.assert_allclose(alpha_query_expansion(query, DATABASE, neighbours, sims, alpha=0.0),
                               average_query_expansion(query, DATABASE, neighbours), rtol=1e-6)


def test_missing_neighbours_and_negative_similarities_are_ignored():
    query = np.array([[1, 0, 0]], np.float32)
    expanded = alpha_query_expansion(query, DATABASE, np.array([[-1, 3]]), np.array([[0.9, -0.2]], np.float32))
    np.testing.assert_allclose(expanded, query)
    with pytest.raises(LookalikeError, match="outside the database"):
        average_query_expansion(query, DATABASE, np.array([[7]]))


def test_database_augmentation_by_hand():
    # k=2: each row and its nearest other row, weighted by sim^alpha (itself weighs 1)
    augmented = database_augmentation(DATABASE, k=2, alpha=1.0)
    # x0: nearest x1 (s): x0 + s x1 = (1 + 1/2, 1/2, 0)
    np.testing.assert_allclose(augmented[0], np.array([1.5, 0.5, 0]) / np.hypot(1.5, 0.5), rtol=1e-6)
    # x3 is orthogonal to all: its neighbour weighs 0, it stays itself
    np.testing.assert_allclose(augmented[3], DATABASE[3], atol=1e-6)
    np.testing.assert_allclose(database_augmentation(DATABASE, k=1), DATABASE, atol=1e-6)
    with pytest.raises(LookalikeError, match="k >= 1"):
        database_augmentation(DATABASE, k=0)
