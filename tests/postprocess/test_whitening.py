"""Learned PCA-whitening: closed-form properties, persistence, and use after any descriptor."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.descriptors import create
from lookalike.errors import LookalikeError
from lookalike.pipelines.training import train_whitening
from lookalike.postprocess.whitening import PCAWhitening


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(12, 12)) * np.linspace(5, 0.1, 12)  # very uneven variances
    return (rng.normal(size=(2000, 12)) @ mixing.T + 3.0).astype(np.float32)


def projected(whitening, x):
    return (x - whitening.mean_) @ whitening.projection_.T


def test_full_whitening_gives_identity_covariance(data):
    whitening = PCAWhitening().fit(data)
    np.testing.assert_allclose(np.cov(projected(whitening, data), rowvar=False), np.eye(12), atol=1e-3)
    out = whitening.transform(data)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)


def test_shrinkage_one_is_a_plain_rotation_and_dims_keep_the_strongest(data):
    rotation = projected(PCAWhitening(shrinkage=1.0).fit(data), data)
    centred = data - data.mean(axis=0)
    # distances are preserved up to one global scale: nothing is whitened
    ratio = np.linalg.norm(rotation[:50], axis=1) / np.linalg.norm(centred[:50], axis=1)
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-3)
    reduced = PCAWhitening(4, shrinkage=1.0).fit(data)
    assert reduced.dim == 4
    variances = projected(reduced, data).var(axis=0)
    assert np.all(np.diff(variances) < 0)  # strongest axes first
    half = projected(PCAWhitening(shrinkage=0.5).fit(data), data).var(axis=0)
    assert half.max() / half.min() < rotation.var(axis=0).max() / rotation.var(axis=0).min()


def test_save_load_and_errors(tmp_path, data):
    whitening = PCAWhitening(6, shrinkage=0.2).fit(data)
    whitening.save(tmp_path / "w.npz")
    again = PCAWhitening.load(tmp_path / "w.npz")
    np.testing.assert_array_equal(again.transform(data[:5]), whitening.transform(data[:5]))
    with pytest.raises(LookalikeError, match="at most 9"):
        PCAWhitening(11).fit(data[:10])
    with pytest.raises(LookalikeError, match="expects \\(N, 12\\)"):
        whitening.transform(data[:, :5])
    with pytest.raises(LookalikeError, match="not found"):
        PCAWhitening.load(tmp_path / "missing.npz")
    np.savez(tmp_path / "other.npz", centers=np.zeros(3))
    with pytest.raises(LookalikeError, match="not a lookalike whitening file"):
        PCAWhitening.load(tmp_path / "other.npz")


def test_whitening_after_a_descriptor_learned_from_image_files(tmp_path, image_dir):
    paths = sorted(image_dir.iterdir())
    whitened, report = train_whitening(create("color-hist"), paths, tmp_path / "w.npz", dim=8,
                                       workers=1, progress=False)
    assert report["images"] == 12 and whitened.dim == 8
    from lookalike.io.images import load_image

    pixels = load_image(paths[0]).pixels
    raw = create("color-hist")(pixels)
    np.testing.assert_allclose(whitened(pixels), PCAWhitening.load(tmp_path / "w.npz").transform(raw[None])[0],
                               atol=1e-6)
    with pytest.raises(LookalikeError, match="already whitened"):
        train_whitening(whitened, paths, tmp_path / "w2.npz", progress=False)
