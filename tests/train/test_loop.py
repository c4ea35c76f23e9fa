"""The fine-tuning loop on a handful of small real image files: it learns, resumes exactly, and
its one-file model describes the same in the torch and ONNX Runtime engines."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lookalike.descriptors import create
from lookalike.errors import LookalikeError
from lookalike.train import FinetuneConfig, Finetuner
from lookalike.train.data import read_labelled
from lookalike.train.loop import class_map
from lookalike.train.model import RetrievalNet
from tests.conftest import scene

TINY = dict(epochs=2, queries=6, negatives=2, pool=12, batch=3, resolution=32, lr=1e-3, val_fraction=0.34)


@pytest.fixture(scope="module")
def classes(class_folder):
    """6 classes of 4 images each: crops of one scene per class."""
    return read_labelled(class_folder)[0]


def weights(path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["state_dict"]


def test_resume_ends_with_the_weights_of_an_uninterrupted_run(classes, tmp_path):
    for loss in ("contrastive",):
        config = FinetuneConfig(loss=loss, **TINY)
        whole = Finetuner(config).fit(classes, tmp_path / f"{loss}-whole.pt", progress=False)
        Finetuner(FinetuneConfig(loss=loss, **TINY | {"epochs": 1})).fit(classes, tmp_path / f"{loss}-cut.pt",
                                                                           progress=False)
        resumed = Finetuner(config).fit(classes, tmp_path / f"{loss}-cut.pt", resume=True, progress=False)
        a, b = weights(tmp_path / f"{loss}-whole.pt"), weights(tmp_path / f"{loss}-cut.pt")
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
        assert [r.get("loss") for r in whole["history"]] == [r.get("loss") for r in resumed["history"]]
        assert whole["history"][1]["loss"] > 0 and len(whole["history"]) == 3  # epoch 0 = before training
    with pytest.raises(LookalikeError, match="other settings"):
        Finetuner(FinetuneConfig(loss="contrastive", **TINY | {"lr": 1e-4})).fit(
            classes, tmp_path / "contrastive-cut.pt", resume=True, progress=False)


def test_saved_model_describes_alike_in_both_engines_with_its_learned_p(classes, tmp_path):
    # 64 pixels: a 2 x 2 feature map, where p matters (on 1 x 1 GeM is the value whatever p)
    config = FinetuneConfig(**TINY | {"epochs": 1, "val_fraction": 0.0, "resolution": 64})
    report = Finetuner(config).fit(classes, tmp_path / "m.pt", progress=False)
    saved = torch.load(tmp_path / "m.pt", weights_only=True)
    assert saved["format"] == "lookalike-finetuned/1" and saved["config"]["p"] != 3.0
    assert saved["config"]["history"] == report["history"]
    assert not any(k.startswith("_fc.") for k in saved["state_dict"])

    image = np.asarray(scene(9, (64, 48)))
    torch_gem = create("gem", weights=str(tmp_path / "m.pt"), engine="torch")
    onnx_gem = create("gem", weights=str(tmp_path / "m.pt"), engine="onnx")
    assert torch_gem.p == pytest.approx(saved["config"]["p"])
    np.testing.assert_allclose(torch_gem(image), onnx_gem(image), atol=2e-5)
    # the network as trained gives the same vector as the descriptor reading the file
    net = RetrievalNet(weights=str(tmp_path / "m.pt"), p=saved["config"]["p"]).eval()
    with torch.no_grad():
        trained = net(torch.from_numpy(image.transpose(2, 0, 1)[None].astype(np.float32)))[0].numpy()
    np.testing.assert_allclose(trained, torch_gem(image), atol=2e-5)
    # -s p= overrides the learned p; other weights change the descriptor
    assert create("gem", weights=str(tmp_path / "m.pt"), p=3.0).p == 3.0
    assert np.abs(create("gem", engine="torch")(image) - torch_gem(image)).max() > 1e-3


def test_class_map_by_hand():
    vectors = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.2, 1.0]]), dim=1)
    assert class_map(vectors, np.array([0, 0, 1, 1])) == 1.0
    # with the labels of 1 and 3 swapped, the rankings are 0: 1 3 2, 1: 0 3 2, 2: 3 1 0, 3: 2 1 0,
    # so each query's one positive comes second (AP 1/2) for 0 and 2, third (AP 1/3) for 1 and 3
    assert class_map(vectors, np.array([0, 1, 1, 0])) == pytest.approx((1 / 2 + 1 / 3) / 2)


def test_bad_settings(classes, tmp_path):
    with pytest.raises(LookalikeError, match="unknown loss"):
        Finetuner(FinetuneConfig(loss="hinge"))
    with pytest.raises(LookalikeError, match="no checkpoint"):
        Finetuner(FinetuneConfig(**TINY)).fit(classes, tmp_path / "none.pt", resume=True, progress=False)
