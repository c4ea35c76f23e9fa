"""Self-supervised training (SSCD): its losses on hand-made tensors, and a tiny run end to end."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lookalike.errors import LookalikeError
from lookalike.train.model import RetrievalNet
from lookalike.train.selfsup import (
    SelfSupervisedConfig,
    SelfSupervisedTrainer,
    entropy_loss,
    info_nce_loss,
    trainable_parameters,
)
from tests.conftest import scene


def _unit(*angles_degrees):
    radians = torch.tensor(angles_degrees, dtype=torch.float64) * math.pi / 180
    return torch.stack([radians.cos(), radians.sin()], dim=1)


def test_info_nce_on_hand_made_pairs():
    a = b = _unit(0, 90)  # two images, each copy identical to its pair, the images orthogonal
    # each of the 4 copies: positive similarity 1, two negatives at 0 -> -log(e^(1/t) / (e^(1/t) + 2))
    for t in (1.0, 0.1):
        assert info_nce_loss(a, b, t).item() == pytest.approx(math.log(1 + 2 * math.exp(-1 / t)))
    # a copy pointing at the other image's copies: the positive at 0, one negative at 1, one at 0
    swapped = info_nce_loss(_unit(0, 90), _unit(90, 0), 1.0).item()
    assert swapped == pytest.approx(-math.log(1 / (1 + math.e + 1)))
    assert info_nce_loss(a, b, 0.01).item() < 1e-30  # separable pairs: the loss vanishes as t -> 0


def test_info_nce_gradient_and_symmetry():
    torch.manual_seed(0)
    a = torch.nn.functional.normalize(torch.randn(5, 8, dtype=torch.float64), dim=1).requires_grad_()
    b = torch.nn.functional.normalize(torch.randn(5, 8, dtype=torch.float64), dim=1).requires_grad_()
    assert torch.autograd.gradcheck(lambda x, y: info_nce_loss(x, y, 0.5), (a, b))
    assert info_nce_loss(a, b).item() == pytest.approx(info_nce_loss(b, a).item())
    with pytest.raises(ValueError, match="B >= 2"):
        info_nce_loss(a[:1], b[:1])


def test_entropy_loss_on_hand_made_points():
    x = _unit(0, 60, 180)  # nearest distances: 1 (0-60), 1 (60-0), sqrt(3) (180-60)
    assert entropy_loss(x, torch.arange(3)).item() == pytest.approx(-math.log(3) / 6)
    # copies of one image do not count: with 0 and 60 one image, their nearest others are at 2 and
    # sqrt(3) (180), and 180's nearest is 60, at sqrt(3)
    assert entropy_loss(x, torch.tensor([0, 0, 1])).item() == pytest.approx(-(math.log(2) + math.log(3)) / 3)
    spread, bunched = entropy_loss(_unit(0, 120, 240), torch.arange(3)), entropy_loss(_unit(0, 10, 20), torch.arange(3))
    assert spread < bunched


def test_only_the_last_blocks_learn():
    net = RetrievalNet()
    learning = trainable_parameters(net, 2)
    network = net.backbone.features.network
    assert all(p.requires_grad for p in network._blocks[-1].parameters())
    assert not any(p.requires_grad for p in network._blocks[-3].parameters())
    assert not network._conv_stem.weight.requires_grad and net.pool.p.requires_grad
    assert {id(p) for p in learning} == {id(p) for p in net.parameters() if p.requires_grad} - {id(net.pool.p)}
    with pytest.raises(LookalikeError, match="has 16 blocks"):
        trainable_parameters(net, 17)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("unlabelled")
    for i in range(10):
        scene(i, (96, 72)).save(root / f"{i}.jpg", quality=90)
    return sorted(root.glob("*.jpg"))


def test_a_tiny_run_trains_the_last_blocks_and_resumes_to_the_same_weights(folder, tmp_path):
    torch.set_num_threads(1)
    config = SelfSupervisedConfig(epochs=2, images=8, batch=4, resolution=48, trainable_blocks=1, val_fraction=0.2)
    report = SelfSupervisedTrainer(config).fit(folder, tmp_path / "a.pt", progress=False)
    assert report["train_images"] == 8 and report["val_images"] == 2 and len(report["history"]) == 3
    assert all(np.isfinite(h["loss"]) for h in report["history"][1:])
    saved = torch.load(tmp_path / "a.pt", weights_only=True)
    assert saved["format"] == "lookalike-finetuned/1" and saved["config"]["training"]["loss"] == "sscd"

    one = SelfSupervisedConfig(**{**config.__dict__, "epochs": 1, "val_fraction": 0.0})
    SelfSupervisedTrainer(one).fit(folder, tmp_path / "b.pt", progress=False)
    two = SelfSupervisedConfig(**{**config.__dict__, "epochs": 2, "val_fraction": 0.0})
    SelfSupervisedTrainer(two).fit(folder, tmp_path / "b.pt", resume=True, progress=False)
    SelfSupervisedTrainer(two).fit(folder, tmp_path / "c.pt", progress=False)
    b, c = (torch.load(tmp_path / f"{n}.pt", weights_only=True)["state_dict"] for n in "bc")
    assert all(torch.equal(b[k], c[k]) for k in c)
    start = RetrievalNet().backbone_state()
    changed = {k for k, v in c.items() if not torch.equal(v, start[k])}
    assert changed and all(k.startswith(("_blocks.15.", "_conv_head", "_bn1")) for k in changed)


def test_bad_settings_are_refused(folder, tmp_path):
    with pytest.raises(LookalikeError, match="batch >= 2"):
        SelfSupervisedTrainer(SelfSupervisedConfig(batch=1))
    with pytest.raises(LookalikeError, match="too few for a batch of 32"):
        SelfSupervisedTrainer(SelfSupervisedConfig()).fit(folder, tmp_path / "m.pt", progress=False)
    with pytest.raises(LookalikeError, match="no checkpoint"):
        SelfSupervisedTrainer(SelfSupervisedConfig(batch=4, val_fraction=0.2)).fit(folder, tmp_path / "m.pt",
                                                                                   resume=True)
