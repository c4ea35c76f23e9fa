"""Every registered descriptor keeps the same contract: shape, dtype, determinism, similarity."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from lookalike.descriptors import available, create, descriptor_class, parse_overrides
from lookalike.descriptors.registry import from_spec
from lookalike.errors import LookalikeError
from tests.conftest import scene

NAMES = available()
SMALL = {"bow": dict(k=32), "vlad": dict(k=4), "fisher": dict(k=4, pca=16), "netvlad": dict(k=4),
         "fvfc": dict(k=4, pca=16, step=16, reduce=8, hidden=16, out=8)}


@pytest.fixture(scope="module")
def images():
    return [np.asarray(scene(seed, (160, 120))) for seed in range(4)]


@pytest.fixture(scope="module")
def trained(images, tmp_path_factory):
    """Every registered descriptor, with a small vocabulary learned where one is needed."""
    folder = tmp_path_factory.mktemp("vocabularies")
    built = {}
    for name in NAMES:
        descriptor = create(name, **SMALL.get(name, {}))
        if name == "fvfc":  # learns from labelled images: an MLP trained for one epoch on 12 of them
            descriptor = _tiny_fvfc(descriptor, folder)
        elif not descriptor.trained:
            sample = [descriptor.training_sample(np.asarray(scene(s))) for s in range(10, 16)]
            descriptor = descriptor.fit(sample, folder / f"{name}.npz")
        built[name] = descriptor
    return built


def _tiny_fvfc(descriptor, folder):
    from lookalike.pipelines.head_training import train_fvfc_on_vectors
    from lookalike.train.data import LabelledImages
    from lookalike.train.frozen import HeadConfig

    fisher = descriptor.fisher
    fisher = fisher.fit([fisher.training_sample(np.asarray(scene(s))) for s in range(10, 16)], folder / "gmm.npz")
    labels = np.arange(12) % 4
    vectors = np.stack([fisher(np.asarray(scene(10 + c).rotate(5 * (i // 4)))) for i, c in enumerate(labels)])
    images = LabelledImages(tuple(folder / f"{i}.jpg" for i in range(12)), labels, ("a", "b", "c", "d"))
    train_fvfc_on_vectors(vectors, images, fisher.model, folder / "fvfc.npz",
                          HeadConfig(epochs=1, queries=4, negatives=2, val_fraction=0.0), descriptor)
    return type(descriptor)(descriptor.config, vocabulary=str(folder / "fvfc.npz"))


@pytest.mark.parametrize("name", NAMES)
def test_shape_dtype_and_determinism(name, images, trained):
    descriptor = trained[name]
    first = descriptor(images[0])
    assert first.shape == (descriptor.dim,) and first.dtype == np.float32
    assert np.isfinite(first).all()
    np.testing.assert_array_equal(first, from_spec(descriptor.spec())(images[0]))


@pytest.mark.parametrize("name", NAMES)
def test_self_similarity_is_highest(name, images, trained):
    descriptor = trained[name]
    vectors = np.stack([descriptor(im) for im in images])
    similarity = vectors @ vectors.T
    assert (np.argmax(similarity, axis=1) == np.arange(len(images))).all()


@pytest.mark.parametrize("name", NAMES)
def test_small_and_odd_images(name, trained):
    descriptor = trained[name]
    for shape in [(1, 1, 3), (7, 300, 3), (300, 5, 3)]:
        vector = descriptor(np.full(shape, 128, np.uint8))
        assert vector.shape == (descriptor.dim,) and np.isfinite(vector).all()


@pytest.mark.parametrize("name", NAMES)
def test_spec_round_trip_and_pickle(name, images, trained):
    descriptor = trained[name]
    rebuilt = from_spec(descriptor.spec())
    assert rebuilt.spec() == descriptor.spec()
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(descriptor))(images[1]), descriptor(images[1]))


@pytest.mark.parametrize("name", NAMES)
def test_docstring_cites_a_source(name):
    doc = descriptor_class(name).__doc__
    assert doc and any(str(year) in doc for year in range(1990, 2030))


def test_unknown_name_lists_valid_ones():
    with pytest.raises(LookalikeError, match="choose one of: bow, cnn-fc, color-hist"):
        create("sift-magic")


def test_wrong_input_is_rejected():
    with pytest.raises(LookalikeError, match=r"\[H, W, 3\] uint8"):
        create("gist")(np.zeros((10, 10), np.uint8))


def test_unknown_option_is_rejected():
    with pytest.raises(LookalikeError, match="unknown option"):
        create("gist", colour=True)


def test_parse_overrides_types():
    cls = descriptor_class("color-hist")
    parsed = parse_overrides(cls.Config, ["bins=8,8,8", "space=lab", "map_order=2"])
    assert parsed == {"bins": (8, 8, 8), "space": "lab", "map_order": 2}
    assert parse_overrides(descriptor_class("gist").Config, ["color=yes"]) == {"color": True}
    with pytest.raises(LookalikeError, match="not a valid int"):
        parse_overrides(cls.Config, ["map_order=two"])
    with pytest.raises(LookalikeError, match="key=value"):
        parse_overrides(cls.Config, ["bins"])
