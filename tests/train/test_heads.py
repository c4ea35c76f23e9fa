"""The heads trained on frozen inputs (NetVLAD, the Fisher vector + MLP hybrid, DELF's attention):
a gradient step lowers their loss, the loop learns and resumes exactly, and each saved file makes
its descriptor describe as the trained module does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from lookalike.descriptors import create
from lookalike.descriptors.cnn.local import AttentionHead, Delf, save_attention
from lookalike.descriptors.cnn.pooling import NetVLAD
from lookalike.descriptors.cnn.registered import netvlad_from_file
from lookalike.descriptors.local.registry import local_from_spec
from lookalike.descriptors.registry import from_spec
from lookalike.errors import LookalikeError
from lookalike.pipelines.head_training import train_fvfc_on_vectors, train_head
from lookalike.train.data import LabelledImages
from lookalike.train.frozen import HeadConfig, embed_inputs, fit_head
from lookalike.train.heads import AttentionPooling, FisherMlp, save_netvlad
from lookalike.train.loop import class_map
from lookalike.train.losses import triplet_loss
from tests.conftest import scene


def labelled(labels: list[int]) -> LabelledImages:
    return LabelledImages(tuple(Path(f"{i}.jpg") for i in range(len(labels))), np.asarray(labels, np.int64),
                          tuple(str(c) for c in sorted(set(labels))))


def one_step_lowers(parameters, loss_of) -> tuple[float, float]:
    before = loss_of()
    optimiser = torch.optim.SGD(list(parameters), lr=0.05)
    optimiser.zero_grad()
    before.backward()
    optimiser.step()
    with torch.no_grad():
        return float(before), float(loss_of())


def triplet_of(head, x: torch.Tensor) -> torch.Tensor:
    q, p, n = head(x)  # rows: query, positive, negative
    return triplet_loss(q[None], p[None], n[None, None], margin=0.1)


def test_a_gradient_step_lowers_each_heads_loss():
    torch.manual_seed(0)
    # the negative is a slightly changed copy of the query, the positive another input: the loss is high
    maps = torch.rand(3, 8, 2, 2)
    maps[2] = maps[0] + 0.05 * torch.rand(8, 2, 2)
    layer = NetVLAD.from_centres(torch.nn.functional.normalize(torch.rand(4, 8), dim=1), alpha=5.0)
    before, after = one_step_lowers(layer.parameters(), lambda: triplet_of(layer, maps))
    assert before > 0.1 and after < before

    vectors = torch.randn(3, 16)
    vectors[2] = vectors[0] + 0.05 * torch.randn(16)
    mlp = FisherMlp(16, hidden=32, out=8)
    before, after = one_step_lowers(mlp.parameters(), lambda: triplet_of(mlp, vectors))
    assert before > 0.1 and after < before

    # DELF: classes told apart by one channel at one position; the classifier reads the pooled features
    pooling, classifier = AttentionPooling(AttentionHead(8, hidden=16)), torch.nn.Linear(8, 2)
    x, y = torch.rand(4, 8, 3, 3), torch.tensor([0, 1, 0, 1])
    x[y == 1, 0, 1, 1] += 3.0

    def cross_entropy():
        return torch.nn.functional.cross_entropy(classifier(pooling.pooled(x)), y)

    before, after = one_step_lowers([*pooling.parameters(), *classifier.parameters()], cross_entropy)
    assert after < before


def clustered(classes: int = 8, per_class: int = 6, seed: int = 0) -> tuple[torch.Tensor, LabelledImages]:
    """Inputs whose class lives in 4 dimensions, drowned by noise in 28 others."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(classes), per_class)
    x = np.concatenate([rng.normal(size=(classes, 4))[labels] * 0.5, rng.normal(size=(len(labels), 28))], axis=1)
    return torch.from_numpy(x.astype(np.float32)), labelled(labels.tolist())


def test_the_loop_learns_keeps_the_best_epoch_and_resumes_exactly(tmp_path):
    x, images = clustered()
    config = HeadConfig(epochs=4, queries=24, negatives=3, pool=48, batch=4, lr=1e-2, val_fraction=0.25)

    def run(epochs, checkpoint, resume=False):
        torch.manual_seed(0)
        head = FisherMlp(32, hidden=32, out=8)
        before = class_map(embed_inputs(head, x), images.labels)
        report = fit_head(head, x, images, HeadConfig(**{**config.__dict__, "epochs": epochs}),
                          checkpoint=checkpoint, resume=resume)
        return head, report, before

    whole, report, before = run(4, tmp_path / "whole.ckpt")
    assert class_map(embed_inputs(whole, x), images.labels) > before + 0.1
    assert report["val_map"] == max(r["val_map"] for r in report["history"])
    run(2, tmp_path / "cut.ckpt")
    resumed, resumed_report, _ = run(4, tmp_path / "cut.ckpt", resume=True)
    assert all(torch.equal(a, b) for a, b in zip(whole.state_dict().values(), resumed.state_dict().values()))
    assert [r.get("loss") for r in report["history"]] == [r.get("loss") for r in resumed_report["history"]]
    with pytest.raises(LookalikeError, match="other settings"):
        fit_head(FisherMlp(32, hidden=32, out=8), x, images, HeadConfig(lr=0.5, epochs=4),
                 checkpoint=tmp_path / "cut.ckpt", resume=True)
    with pytest.raises(LookalikeError, match="unknown loss"):
        fit_head(FisherMlp(32), x, images, HeadConfig(loss="arcface"))


def test_trained_netvlad_file_reloads_and_describes_identically(tmp_path):
    descriptor = create("netvlad", k=4, engine="torch", max_side=64)
    start = descriptor.fit([descriptor.training_sample(np.asarray(scene(s, (96, 64)))) for s in range(3)],
                           tmp_path / "kmeans.npz")
    layer = netvlad_from_file(start.config.vocabulary, 4)
    with torch.no_grad():  # as training would: move the centres and the assignment
        layer.centres.add_(0.01 * torch.randn_like(layer.centres))
        layer.assign.weight.mul_(0.5)
    alpha = float(np.load(tmp_path / "kmeans.npz")["alpha"])
    trained = create("netvlad", k=4, engine="torch", max_side=64,
                     vocabulary=str(save_netvlad(layer, alpha, tmp_path / "trained.npz", {"epochs": 1})))
    image = np.asarray(scene(7, (96, 64)))
    expected = torch.nn.functional.normalize(layer.eval()(trained.feature_map(trained.prepare(image)[0])[None]),
                                             dim=1)[0].detach().numpy()
    np.testing.assert_allclose(trained(image), expected, atol=1e-6)
    np.testing.assert_array_equal(from_spec(trained.spec())(image), trained(image))
    assert np.abs(trained(image) - start(image)).max() > 1e-3
    with pytest.raises(LookalikeError, match="k=4, not k=8"):
        create("netvlad", k=8, vocabulary=trained.config.vocabulary)(image)


def test_fvfc_file_reloads_and_describes_as_the_trained_mlp(tmp_path):
    small = dict(k=4, pca=16, dense=True, step=16, reduce=8, hidden=16, out=8)
    fisher = create("fvfc", **small).fisher
    fisher = fisher.fit([fisher.training_sample(np.asarray(scene(s, (96, 64)))) for s in range(4)],
                        tmp_path / "gmm.npz")
    pictures = [np.asarray(scene(s % 6, (96, 64)).rotate(4 * (s // 6))) for s in range(24)]
    vectors = np.stack([fisher(p) for p in pictures])
    images = labelled([s % 6 for s in range(24)])
    config = HeadConfig(epochs=2, queries=8, negatives=2, batch=4, val_fraction=0.34)
    report = train_fvfc_on_vectors(vectors, images, fisher.model, tmp_path / "fvfc.npz", config,
                                   create("fvfc", **small))
    assert report["use"].startswith(f"-d fvfc -s vocabulary={tmp_path / 'fvfc.npz'}")
    described = create("fvfc", **small, vocabulary=str(tmp_path / "fvfc.npz"))
    assert described.dim == 8 and described.trained
    # the same numbers through torch: the saved PCA, then the MLP rebuilt from the saved weights
    model = described.model
    mlp = FisherMlp(8, 16, 8)
    mlp.load_state_dict({f"layers.{i}.{kind}": torch.from_numpy(model[f"{kind[0]}{1 + i // 2}"])
                         for i in (0, 2) for kind in ("weight", "bias")})
    reduced = (vectors[:3] - model["fv_mean"]) @ model["fv_components"].T
    expected = mlp(torch.from_numpy(reduced.astype(np.float32))).detach().numpy()
    np.testing.assert_allclose(np.stack([described(p) for p in pictures[:3]]), expected, atol=1e-5)
    np.testing.assert_array_equal(from_spec(described.spec())(pictures[0]), described(pictures[0]))
    with pytest.raises(LookalikeError, match="reduce, hidden, out"):
        create("fvfc", **{**small, "out": 4}, vocabulary=str(tmp_path / "fvfc.npz"))(pictures[0])
    with pytest.raises(LookalikeError, match="lookalike finetune LABELLED -d fvfc"):
        create("fvfc").fit([], tmp_path / "x.npz")


def test_learnt_attention_scores_and_selects_delf_keypoints(tmp_path):
    torch.manual_seed(0)
    head = AttentionHead(112, hidden=8)
    path = save_attention(head, tmp_path / "attention.pt", {"backbone": "efficientnet-lite0", "block": 10})
    options = dict(engine="torch", max_side=96, scales=(1.0,), max_keypoints=10, dim=8)
    norm = Delf(**options)
    learnt = Delf(**options, attention=str(path))
    image = np.asarray(scene(3, (96, 64)))
    points, raw, scores = learnt.raw_features(image)
    # the scores are the head's on each kept descriptor, best first, and pick other positions than the norm
    w1, b1 = head.layers[0].weight[:, :, 0, 0].detach().numpy(), head.layers[0].bias.detach().numpy()
    w2, b2 = head.layers[2].weight[:, :, 0, 0].detach().numpy(), head.layers[2].bias.detach().numpy()
    by_hand = np.log1p(np.exp(np.maximum(raw @ w1.T + b1, 0) @ w2.T + b2))[:, 0]
    np.testing.assert_allclose(scores, by_hand, rtol=1e-4)
    assert (np.diff(scores) <= 0).all() and len(scores) == 10
    assert not np.array_equal(points, norm.raw_features(image)[0])
    pca = learnt.fit([learnt.training_sample(np.asarray(scene(s, (96, 64)))) for s in range(3)], tmp_path / "pca.npz")
    rebuilt = local_from_spec(pca.spec())
    np.testing.assert_array_equal(rebuilt(image).keypoints, pca(image).keypoints)
    np.testing.assert_array_equal(rebuilt(image).descriptors, pca(image).descriptors)
    with pytest.raises(LookalikeError, match="block 10, not efficientnet-lite0 block 9"):
        Delf(**options, block=9, attention=str(path)).raw_features(image)
    with pytest.raises(LookalikeError, match="not a DELF attention head"):
        Delf(**options, attention=str(tmp_path / "pca.npz")).raw_features(image)


def test_netvlad_and_attention_train_from_labelled_images(class_folder, tmp_path):
    config = HeadConfig(epochs=1, queries=6, negatives=2, batch=3, val_fraction=0.34)
    report = train_head("netvlad", class_folder, tmp_path / "netvlad.npz", config,
                        create("netvlad", k=4, engine="torch"), resolution=64, progress=False)
    assert report["use"] == f"-d netvlad -s k=4 -s vocabulary={tmp_path / 'netvlad.npz'}"
    assert create("netvlad", k=4, vocabulary=str(tmp_path / "netvlad.npz"))(np.asarray(scene(1))).shape == (4 * 1280,)
    report = train_head("delf", class_folder, tmp_path / "attention.pt", config, Delf(engine="torch"), resolution=64,
                        progress=False, plot=tmp_path / "attention.png")
    assert report["training"]["loss"] == "classification" and (tmp_path / "attention.png").stat().st_size > 0
    assert len(Delf(engine="torch", attention=str(tmp_path / "attention.pt")).raw_features(np.asarray(scene(2)))[0])
