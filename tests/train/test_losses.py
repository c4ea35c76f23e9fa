"""The ranking losses against values worked out by hand, and the direction of their gradients."""

from __future__ import annotations

import math

import pytest
import torch

from lookalike.train.losses import contrastive_loss, triplet_loss

# one tuple: unit query, a positive at squared distance 0.8, an easy negative (squared distance 2)
# and a hard one (squared distance 0.4)
QUERY = torch.tensor([[1.0, 0.0]])
POSITIVE = torch.tensor([[0.6, 0.8]])
NEGATIVES = torch.tensor([[[0.0, 1.0], [0.8, 0.6]]])


def test_contrastive_loss_by_hand():
    # pull 0.8; the easy negative is beyond the margin; the hard one is sqrt(0.4) away
    expected = 0.5 * (0.8 + (0.75 - math.sqrt(0.4)) ** 2)
    assert contrastive_loss(QUERY, POSITIVE, NEGATIVES, margin=0.75).item() == pytest.approx(expected, rel=1e-6)
    # beyond the margin every negative is ignored
    assert contrastive_loss(QUERY, POSITIVE, NEGATIVES, margin=0.5).item() == pytest.approx(0.4, rel=1e-6)


def test_triplet_loss_by_hand():
    # easy negative: 0.8 - 2 + 0.1 < 0 adds nothing; hard negative: 0.8 - 0.4 + 0.1 = 0.5
    assert triplet_loss(QUERY, POSITIVE, NEGATIVES, margin=0.1).item() == pytest.approx(0.5, rel=1e-6)
    # averaged over tuples: a second tuple whose positive is the query itself and whose negatives are far
    query = torch.cat([QUERY, QUERY])
    positive = torch.cat([POSITIVE, QUERY])
    negatives = torch.cat([NEGATIVES, -NEGATIVES])
    assert triplet_loss(query, positive, negatives, margin=0.1).item() == pytest.approx(0.25, rel=1e-6)


@pytest.mark.parametrize("loss", [contrastive_loss, triplet_loss])
def test_a_gradient_step_pulls_the_positive_and_pushes_the_hard_negative(loss):
    positive = POSITIVE.clone().requires_grad_(True)
    negatives = NEGATIVES.clone().requires_grad_(True)
    loss(QUERY, positive, negatives).backward()
    step = 0.1
    closer = (QUERY - (positive - step * positive.grad)).norm()
    farther = (QUERY - (negatives - step * negatives.grad)[0, 1]).norm()
    assert closer < (QUERY - POSITIVE).norm()
    assert farther > (QUERY - NEGATIVES[0, 1]).norm()
    assert torch.all(negatives.grad[0, 0] == 0)  # the easy negative gets no gradient


def test_shapes_are_checked():
    with pytest.raises(ValueError, match="negatives"):
        triplet_loss(QUERY, POSITIVE, NEGATIVES[0])
