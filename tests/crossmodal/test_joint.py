"""The joint embedding: fitting, saving and loading, and a short training run on real captioned photos."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lookalike.crossmodal.joint import JointEmbedding  # noqa: E402
from lookalike.errors import LookalikeError  # noqa: E402


def _paired(seed=0, n=40, dx=24, dt=16, per_image=2):
    """Image and caption vectors that share a 4-D latent, as real pairs do."""
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((n, 4))
    images = latent @ rng.standard_normal((4, dx)) + 0.3 * rng.standard_normal((n, dx))
    owner = np.repeat(np.arange(n), per_image)
    texts = latent[owner] @ rng.standard_normal((4, dt)) + 0.3 * rng.standard_normal((len(owner), dt))
    captions = latent / np.linalg.norm(latent, axis=1, keepdims=True)
    return images.astype(np.float32), texts.astype(np.float32), owner, captions.astype(np.float32)


@pytest.mark.parametrize("options", [
    {"method": "cca", "dim": 4, "hubness": 3},
    {"method": "triplet", "dim": 8, "epochs": 5, "batch_size": 16},
    {"method": "infonce", "dim": 8, "epochs": 3, "batch_size": 16, "hidden": 12},
    {"method": "triplet", "dim": 8, "epochs": 3, "batch_size": 16, "init": "cca", "losses": ("i2t", "t2i")},
    {"method": "infonce", "dim": 8, "epochs": 3, "batch_size": 16, "captions": "all", "learn_temperature": True},
    {"method": "triplet", "dim": 8, "epochs": 3, "batch_size": 16, "captions": "all"},
    {"method": "infonce", "dim": 8, "epochs": 2, "batch_size": 16, "ensemble": 2, "hubness": 5},
])
def test_saved_model_reloads_and_ranks_identically(tmp_path, options):
    images, texts, owner, captions = _paired()
    spec = {"name": "gem", "config": {"p": 3.0}}
    model = JointEmbedding(image_spec=spec, text_spec={"name": "minilm", "config": {}}, **options)
    model.fit(images, texts, owner, caption_vectors=captions, progress=False)
    loaded = JointEmbedding.load(model.save(tmp_path / "joint.pt"))
    assert loaded.config == model.config and loaded.image_spec == spec
    for encode in ("encode_images", "encode_texts"):
        a = getattr(model, encode)(images if encode == "encode_images" else texts)
        b = getattr(loaded, encode)(images if encode == "encode_images" else texts)
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
        penalties = "image_penalties" if encode == "encode_images" else "text_penalties"
        np.testing.assert_array_equal(getattr(model, penalties)(a), getattr(loaded, penalties)(b))
        assert (getattr(model, penalties)(a) != 0).all() == bool(options.get("hubness"))
    # the file holds tensors and JSON only: a weights_only load reads it
    data = torch.load(tmp_path / "joint.pt", weights_only=True)
    assert isinstance(data["config"], str) and all(isinstance(v, torch.Tensor) for v in data["state"].values())


def test_an_ensemble_averages_its_members_cosines():
    images, texts, owner, _ = _paired()
    options = {"method": "infonce", "dim": 8, "epochs": 2, "batch_size": 16, "captions": "all", "seed": 3}
    joined = JointEmbedding(**options, ensemble=3).fit(images, texts, owner, progress=False)
    assert joined.dim == 24 and joined.encode_images(images).shape == (len(images), 24)
    members = [JointEmbedding(**{**options, "seed": 3 + i}).fit(images, texts, owner, progress=False) for i in range(3)]
    cosines = [m.encode_texts(texts) @ m.encode_images(images).T for m in members]
    np.testing.assert_allclose(joined.encode_texts(texts) @ joined.encode_images(images).T, np.mean(cosines, axis=0),
                               atol=1e-5)


def test_view_augmentation_draws_one_view_per_image_and_batch_or_correlates_them_all():
    images, texts, owner, _ = _paired()
    options = {"method": "infonce", "dim": 8, "epochs": 3, "batch_size": 16, "captions": "all"}
    plain = JointEmbedding(**options).fit(images, texts, owner, progress=False)
    # views that all equal the image's vector: the same training as without augmentation
    same = np.repeat(images[:, None], 3, axis=1)
    copied = JointEmbedding(**options, augment="views").fit(images, texts, owner, views=same, progress=False)
    np.testing.assert_allclose(copied.encode_images(images), plain.encode_images(images), atol=1e-5)
    # views that differ: the heads learn from them, not from the vectors
    noisy = same + 0.5 * np.random.default_rng(1).standard_normal(same.shape).astype(np.float32)
    augmented = JointEmbedding(**options, augment="views").fit(images, texts, owner, views=noisy, progress=False)
    assert not np.allclose(augmented.encode_images(images), plain.encode_images(images), atol=1e-3)
    with pytest.raises(LookalikeError, match="needs the views"):
        JointEmbedding(**options, augment="views").fit(images, texts, owner, progress=False)
    with pytest.raises(LookalikeError, match=r"views must be \(N, V, 24\)"):
        JointEmbedding(**options, augment="views").fit(images, texts, owner, views=same[:, :, :5], progress=False)
    with pytest.raises(LookalikeError, match="augment"):
        JointEmbedding(augment="crops")
    # CCA correlates every view as one more pair: copies of the vectors change no covariance
    cca = JointEmbedding(method="cca", dim=4).fit(images, texts, owner)
    copied = JointEmbedding(method="cca", dim=4, augment="views").fit(images, texts, owner, views=same)
    np.testing.assert_allclose(copied.encode_images(images), cca.encode_images(images), atol=1e-4)
    augmented = JointEmbedding(method="cca", dim=4, augment="views").fit(images, texts, owner, views=noisy)
    assert not np.allclose(augmented.encode_images(images), cca.encode_images(images), atol=1e-3)


def test_cca_space_pairs_images_with_their_captions():
    images, texts, owner, _ = _paired(n=200)
    model = JointEmbedding(method="cca", dim=4).fit(images[:150], texts[:300], owner[:300])
    similarity = model.encode_texts(texts[300:]) @ model.encode_images(images[150:]).T
    assert (similarity.argmax(1) == owner[300:] - 150).mean() > 0.5  # chance: 1/50


def test_validation_picks_the_best_epoch_and_checkpoints_resume(tmp_path):
    images, texts, owner, captions = _paired(n=60)
    validation = (images[40:], texts[80:], owner[80:] - 40)
    options = {"method": "triplet", "dim": 8, "epochs": 6, "batch_size": 16, "patience": 100}
    full = JointEmbedding(**options).fit(images[:40], texts[:80], owner[:80], caption_vectors=captions[:40],
                                         validation=validation, progress=False)
    assert len(full.history_) == 6
    assert full.report_["validation_rsum"] >= max(row["score"] for row in full.history_)
    # stop after 3 epochs, then resume from the checkpoint: same result as the uninterrupted run
    checkpoint = tmp_path / "run.ckpt"
    JointEmbedding(**{**options, "epochs": 3}).fit(images[:40], texts[:80], owner[:80], caption_vectors=captions[:40],
                                                    validation=validation, checkpoint=checkpoint, progress=False)
    resumed = JointEmbedding(**options).fit(images[:40], texts[:80], owner[:80], caption_vectors=captions[:40],
                                            validation=validation, checkpoint=checkpoint, resume=True, progress=False)
    assert [r["loss"] for r in resumed.history_] == pytest.approx([r["loss"] for r in full.history_], rel=1e-4)
    np.testing.assert_allclose(resumed.encode_images(images), full.encode_images(images), atol=1e-5)


def test_bad_input_and_files(tmp_path):
    with pytest.raises(LookalikeError, match="method"):
        JointEmbedding(method="svm")
    with pytest.raises(LookalikeError, match="losses"):
        JointEmbedding(losses=("visual", "colour"))
    with pytest.raises(LookalikeError, match="caption_vectors"):
        JointEmbedding().fit(*_paired()[:3])
    with pytest.raises(LookalikeError, match="not fitted"):
        JointEmbedding().encode_texts(np.zeros((1, 3)))
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(LookalikeError, match="not a lookalike joint model"):
        JointEmbedding.load(tmp_path / "junk.pt")
    with pytest.raises(LookalikeError, match="no such joint model"):
        JointEmbedding.load(tmp_path / "missing.pt")
    model = JointEmbedding(method="cca", dim=2).fit(*_paired()[:3])
    with pytest.raises(LookalikeError, match=r"\(N, 24\)"):
        model.encode_images(np.zeros((2, 5)))


def test_short_training_on_real_captioned_photos_lowers_its_loss(shared_data):
    pytest.importorskip("sklearn")
    from lookalike.descriptors import create
    from lookalike.io.captions import load_captions
    from lookalike.pipelines.crossmodal import caption_documents, describe_captioned

    data = load_captions(shared_data / "captions", "train").subset(range(24))
    images, data, _ = describe_captioned(create("gem", max_side=128), data, workers=1, progress=False)
    from lookalike.crossmodal.text import create_text_encoder

    tfidf = create_text_encoder("tfidf", min_df=1).fit(data.captions)
    model = JointEmbedding(dim=32, epochs=40, batch_size=12, lr=3e-3).fit(
        images, tfidf.encode(data.captions), data.owner, caption_vectors=caption_documents(data), progress=False)
    losses = [row["loss"] for row in model.history_]
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
    # and the training images now find their own captions far above chance (1/24)
    similarity = model.encode_texts(tfidf.encode(data.captions)) @ model.encode_images(images).T
    assert (similarity.argmax(1) == data.owner).mean() > 0.5


def test_resuming_from_another_runs_checkpoint_is_a_clear_error(tmp_path):
    images, texts, owner, captions = _paired()
    checkpoint = tmp_path / "run.ckpt"
    JointEmbedding(dim=8, epochs=1, batch_size=16).fit(images, texts, owner, caption_vectors=captions,
                                                       checkpoint=checkpoint, progress=False)
    with pytest.raises(LookalikeError, match="not a checkpoint of this training run"):
        JointEmbedding(dim=4, epochs=2, batch_size=16).fit(images, texts, owner, caption_vectors=captions,
                                                           checkpoint=checkpoint, resume=True, progress=False)


def test_a_first_format_file_still_loads(tmp_path):
    """A joint.pt written before ensembles and the hubness correction (format 1) reads as before."""
    import json

    images, texts, owner, _ = _paired()
    model = JointEmbedding(method="cca", dim=4).fit(images, texts, owner)
    data = torch.load(model.save(tmp_path / "joint.pt"), weights_only=True)
    meta = json.loads(data["config"])
    meta["format_version"] = 1
    for key in ("captions", "learn_temperature", "ensemble", "hubness"):
        del meta["config"][key]
    torch.save({"config": json.dumps(meta), "state": data["state"]}, tmp_path / "old.pt")
    old = JointEmbedding.load(tmp_path / "old.pt")
    assert old.dim == 4 and not old.config.hubness
    np.testing.assert_array_equal(old.encode_images(images), model.encode_images(images))
