"""The joint embedding's losses against values computed by hand."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from lookalike.crossmodal.losses import cross_modal_triplet_loss, info_nce_loss, visual_triplet_loss  # noqa: E402

SIM = torch.tensor([[0.9, 0.5, 0.1], [0.8, 0.3, 0.2], [0.0, 0.6, 0.7]])


def test_cross_modal_triplet_hardest_negative():
    # rows (image->text): hinge 0.2 - pos + hardest neg = 0, 0.7, 0.1
    assert float(cross_modal_triplet_loss(SIM, 0.2)) == pytest.approx((0 + 0.7 + 0.1) / 3)
    # columns (text->image): 0.1, 0.5, 0
    assert float(cross_modal_triplet_loss(SIM.T, 0.2)) == pytest.approx((0.1 + 0.5 + 0) / 3)


def test_cross_modal_triplet_all_negatives():
    # row 1: (0.7 + 0.1) / 2, row 2: (0 + 0.1) / 2
    assert float(cross_modal_triplet_loss(SIM, 0.2, hardest=False)) == pytest.approx((0 + 0.4 + 0.05) / 3)


def test_visual_triplet_follows_caption_similarity():
    images = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], requires_grad=True)
    captions = torch.tensor([[1.0, 0.2, 0.5], [0.2, 1.0, 0.1], [0.5, 0.1, 1.0]])
    # anchor 0: positive 2 (0.5), negative 1: 0.2 - 0.6 + 0 < 0 -> 0
    # anchor 1: positive 0 (0.2), negative 2: 0.2 - 0 + 0.8 = 1.0
    # anchor 2: positive 0 (0.5), negative 1: 0.2 - 0.6 + 0.8 = 0.4
    loss = visual_triplet_loss(images, captions, 0.2)
    assert loss.item() == pytest.approx((0 + 1.0 + 0.4) / 3)
    loss.backward()
    assert images.grad is not None and images.grad.abs().sum() > 0


def test_visual_triplet_without_valid_negatives_is_zero():
    images = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert float(visual_triplet_loss(images, torch.ones(2, 2), 0.2)) == 0.0


def test_info_nce_symmetric():
    similarity = torch.tensor([[1.0, 0.0], [0.5, 1.0]])
    # each row and each column: one log(1 + e^-1) and one log(1 + e^-0.5)
    expected = (math.log(1 + math.exp(-1)) + math.log(1 + math.exp(-0.5))) / 2
    assert float(info_nce_loss(similarity, temperature=1.0)) == pytest.approx(expected, rel=1e-6)


def test_bad_shapes():
    with pytest.raises(ValueError):
        cross_modal_triplet_loss(torch.zeros(2, 3))
    with pytest.raises(ValueError):
        visual_triplet_loss(torch.zeros(3, 2), torch.zeros(2, 2))


# two images, three texts: texts 0 and 1 describe image 0, text 2 image 1
MULTI = torch.tensor([[0.9, 0.5, 0.6], [0.2, 0.4, 0.7]])
OWNED = torch.tensor([[True, True, False], [False, False, True]])


def test_cross_modal_triplet_with_several_positives_per_image():
    # image->text, one term per positive pair: (0,0) 0.2-0.9+0.6 -> 0; (0,1) 0.2-0.5+0.6 = 0.3; (1,2) 0.2-0.7+0.4 -> 0
    assert float(cross_modal_triplet_loss(MULTI, 0.2, positives=OWNED)) == pytest.approx(0.3 / 3)
    # text->image: text 0 0.2-0.9+0.2 -> 0; text 1 0.2-0.5+0.4 = 0.1; text 2 0.2-0.7+0.6 = 0.1
    assert float(cross_modal_triplet_loss(MULTI.T, 0.2, positives=OWNED.T)) == pytest.approx(0.2 / 3)
    # the diagonal, given explicitly, is the default
    eye = torch.eye(3, dtype=torch.bool)
    default = float(cross_modal_triplet_loss(SIM))
    assert float(cross_modal_triplet_loss(SIM, 0.2, positives=eye)) == pytest.approx(default)


def test_info_nce_with_several_positives_per_image():
    e = math.exp
    rows = [-math.log((e(0.9) + e(0.5)) / (e(0.9) + e(0.5) + e(0.6))), -math.log(e(0.7) / (e(0.2) + e(0.4) + e(0.7)))]
    columns = [-math.log(e(0.9) / (e(0.9) + e(0.2))), -math.log(e(0.5) / (e(0.5) + e(0.4))),
               -math.log(e(0.7) / (e(0.6) + e(0.7)))]
    expected = (sum(rows) / 2 + sum(columns) / 3) / 2
    assert float(info_nce_loss(MULTI, 1.0, positives=OWNED)) == pytest.approx(expected, rel=1e-6)
    # a learnt temperature is a tensor, and gets a gradient
    temperature = torch.tensor(0.5, requires_grad=True)
    info_nce_loss(MULTI, temperature, positives=OWNED).backward()
    assert temperature.grad is not None and temperature.grad != 0
