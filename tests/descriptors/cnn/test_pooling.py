"""The pooling functions against their closed forms."""

from __future__ import annotations

import math

import pytest
import torch

from lookalike.descriptors.cnn import NetVLAD, crow, gem, mac, rmac, rmac_regions, spoc
from lookalike.descriptors.cnn.pooling import GeM, assignment_sharpness, centre_prior


@pytest.fixture
def maps():
    torch.manual_seed(0)
    return torch.relu(torch.randn(3, 16, 9, 13))


def test_gem_p1_is_average_and_large_p_tends_to_mac(maps):
    positive = maps + 0.01  # GeM clamps at eps; away from 0 the identities are exact
    torch.testing.assert_close(gem(positive, 1.0), positive.mean(dim=(2, 3)))
    errors = [(gem(positive, p) - mac(positive)).abs().max().item() for p in (3, 10, 50, 200)]
    assert errors == sorted(errors, reverse=True) and errors[-1] < 0.05 * mac(positive).max().item()


def test_learnable_gem_matches_function_and_gets_a_gradient(maps):
    layer = GeM(3.0)
    out = layer(maps + 0.1)
    torch.testing.assert_close(out, gem(maps + 0.1, 3.0))
    out.sum().backward()
    assert layer.p.grad is not None and torch.isfinite(layer.p.grad)


def test_mac_and_spoc(maps):
    torch.testing.assert_close(mac(maps), maps.flatten(2).max(dim=2).values)
    torch.testing.assert_close(spoc(maps, prior=False), maps.mean(dim=(2, 3)))
    prior = centre_prior(9, 13)
    assert prior.argmax().item() == 4 * 13 + 6  # the centre weighs most
    torch.testing.assert_close(prior, prior.flip(0).flip(1))  # and it is symmetric
    torch.testing.assert_close(spoc(maps), (maps * prior).sum(dim=(2, 3)) / prior.sum())


def test_crow_weights_by_hand():
    x = torch.zeros(1, 2, 2, 2)
    x[0, 0] = torch.tensor([[1.0, 0.0], [0.0, 0.0]])  # channel 0: 1 of 4 positions non-zero
    x[0, 1] = torch.tensor([[1.0, 1.0], [1.0, 1.0]])  # channel 1: all 4
    total = torch.tensor([[2.0, 1.0], [1.0, 1.0]])
    spatial = (total / total.pow(2).sum().sqrt()).sqrt()
    q = torch.tensor([0.25, 1.0])
    omega = torch.log(q.sum() / q)
    expected = torch.stack([(x[0, c] * spatial).sum() for c in range(2)]) * omega
    torch.testing.assert_close(crow(x)[0], expected, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("height, width, levels", [(10, 10, 3), (24, 32, 3), (32, 24, 3), (30, 40, 4), (10, 30, 2)])
def test_rmac_region_count_follows_the_papers_rule(height, width, levels):
    regions = rmac_regions(height, width, levels)
    short, long_ = min(height, width), max(height, width)
    # m: the number of level-1 squares along the long side whose overlap is closest to 40%
    m = 1 if long_ == short else min(range(2, 8), key=lambda n: abs((short - (long_ - short) / (n - 1)) / short - 0.4))
    assert len(regions) == sum(level * (level + m - 1) for level in range(1, levels + 1))
    for top, left, h, w in regions:
        assert h == w and 0 <= top and top + h <= height and 0 <= left and left + w <= width
    sides = sorted({h for _, _, h, _ in regions}, reverse=True)
    assert sides == [math.floor(2 * short / (level + 1)) for level in range(1, levels + 1)]


def test_rmac_square_map_uses_14_regions_and_whole_map_first(maps):
    regions = rmac_regions(12, 12, 3)
    assert len(regions) == 1 + 4 + 9 and regions[0] == (0, 0, 12, 12)
    square = maps[:, :, :9, :9]
    manual = sum(torch.nn.functional.normalize(square[:, :, t:t + s, l:l + s].amax(dim=(2, 3)), dim=1)
                 for t, l, s, _ in rmac_regions(9, 9, 3))
    torch.testing.assert_close(rmac(square, 3), manual)


@pytest.mark.parametrize("pool", [mac, spoc, crow, gem, rmac])
def test_a_batch_equals_single_images(pool, maps):
    batch = pool(maps)
    singles = torch.cat([pool(maps[i:i + 1]) for i in range(len(maps))])
    torch.testing.assert_close(batch, singles)


def test_netvlad_from_kmeans_is_soft_vlad():
    torch.manual_seed(1)
    centres = torch.nn.functional.normalize(torch.randn(4, 8), dim=1)
    x = torch.relu(torch.randn(2, 8, 5, 6))
    layer = NetVLAD.from_centres(centres, alpha=30.0)
    out = layer(x)
    # by hand: soft assignment exp(-alpha |x - c|^2) normalised over clusters, residual sums
    features = torch.nn.functional.normalize(x, dim=1).flatten(2).transpose(1, 2)  # [B, N, C]
    logits = -30.0 * torch.cdist(features, centres[None].expand(2, -1, -1)).pow(2)
    soft = logits.softmax(dim=2)  # [B, N, K]
    residuals = features[:, :, None, :] - centres[None, None]  # [B, N, K, C]
    vlad = (soft[..., None] * residuals).sum(dim=1)
    vlad = torch.nn.functional.normalize(torch.nn.functional.normalize(vlad, dim=2).flatten(1), dim=1)
    torch.testing.assert_close(out, vlad, atol=1e-5, rtol=1e-4)
    assert out.shape == (2, 32)


def test_assignment_sharpness_gives_the_asked_ratio():
    torch.manual_seed(2)
    centres = torch.nn.functional.normalize(torch.randn(6, 8), dim=1)
    features = torch.randn(500, 8)
    alpha = assignment_sharpness(features, centres, ratio=100.0)
    distances = torch.cdist(torch.nn.functional.normalize(features, dim=1), centres).pow(2)
    nearest = distances.topk(2, dim=1, largest=False).values
    assert math.isclose(alpha * (nearest[:, 1] - nearest[:, 0]).mean().item(), math.log(100.0), rel_tol=1e-5)
