"""DELF-style local features: shapes, limits, receptive-field coordinates, the PCA file, workers."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.descriptors.local.registry import available_local, create_local, local_from_spec
from lookalike.descriptors.local.sift import LocalFeatures
from lookalike.errors import LookalikeError
from lookalike.pipelines.extract import extract

skimage_data = pytest.importorskip("skimage.data")
pytest.importorskip("torch")


@pytest.fixture(scope="module")
def delf(tmp_path_factory):
    untrained = create_local("delf", scales=(1.0, 0.5), max_side=512)
    sample = [untrained.training_sample(skimage_data.astronaut()), untrained.training_sample(skimage_data.coffee())]
    return untrained.fit(sample, tmp_path_factory.mktemp("delf") / "pca.npz")


def test_shapes_norms_and_limits(delf):
    image = skimage_data.coffee()  # 400 x 600
    features = delf(image)
    assert isinstance(features, LocalFeatures) and features.size == (600, 400)
    t = len(features.keypoints)
    # shrunk to 512 x 341 (max_side): 32 x 22 positions at stride 16, and 16 x 11 at scale 0.5
    assert t == 32 * 22 + 16 * 11
    assert features.keypoints.shape == (t, 4) and features.descriptors.shape == (t, 40)
    assert features.keypoints.dtype == features.descriptors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(features.descriptors, axis=1), 1.0, rtol=1e-5)
    x, y = features.keypoints[:, 0], features.keypoints[:, 1]
    assert (x >= 0).all() and (x < 600).all() and (y >= 0).all() and (y < 400).all()
    few = create_local("delf", **{**delf.config.__dict__, "max_keypoints": 50})(image)
    assert len(few.keypoints) == 50
    kept = delf.raw_features(image)[2]
    assert (np.diff(kept) <= 0).all()  # the strongest (largest norm) first


def test_keypoints_sit_at_receptive_field_centres_in_image_pixels(delf):
    image = skimage_data.coffee()[:384, :512]
    one = create_local("delf", **{**delf.config.__dict__, "scales": (1.0,)})
    x, y = one(image).keypoints[:, :2].T
    assert (x % 16 == 0).all() and (y % 16 == 0).all()
    half = create_local("delf", **{**delf.config.__dict__, "scales": (0.5,)})
    x, y = half(image).keypoints[:, :2].T
    np.testing.assert_allclose((x - 0.5) % 32, 0, atol=1e-4)  # (16 j + 0.5) * 2 - 0.5
    np.testing.assert_allclose(half(image).keypoints[:, 2], 32)


def test_a_crop_is_verified_with_the_right_translation(delf):
    from lookalike.rerank.spatial import verify_pair

    image = skimage_data.astronaut()
    crop = image[48:48 + 320, 32:32 + 384]
    result = verify_pair(delf(crop), delf(image), model="affine", threshold=4.0)
    assert result.inliers > 100
    np.testing.assert_allclose(result.transform[:, :2], np.eye(2), atol=0.02)
    np.testing.assert_allclose(result.transform[:, 2], [32, 48], atol=2.0)


def test_pca_file_options_and_spec(delf, tmp_path):
    assert available_local() == ["delf", "sift"]
    with pytest.raises(LookalikeError, match="needs a PCA"):
        create_local("delf")(skimage_data.coffee())
    with pytest.raises(LookalikeError, match="unknown local features 'orb'"):
        create_local("orb")
    with pytest.raises(LookalikeError, match="unknown option"):
        create_local("delf", size=3)
    with pytest.raises(LookalikeError, match="not found"):
        create_local("delf", pca=str(tmp_path / "missing.npz"))
    with pytest.raises(LookalikeError, match="not block 9"):
        create_local("delf", pca=delf.config.pca, block=9)(skimage_data.coffee())
    with np.load(delf.config.pca, allow_pickle=False) as data:
        assert data["components"].shape == (40, 112)
    rebuilt = local_from_spec(delf.spec())
    assert rebuilt.config == delf.config


@pytest.mark.parametrize("name", ["sift", "delf"])
def test_extractors_run_in_the_extraction_pipeline(name, delf, image_dir):
    pytest.importorskip("cv2")
    extractor = delf if name == "delf" else create_local("sift")
    paths = sorted(image_dir.iterdir())[:2]
    from lookalike.io.images import load_image

    for path, result in extract(extractor, paths, workers=1, progress=None):
        direct = extractor(load_image(path, max_side=extractor.max_side).pixels)
        np.testing.assert_array_equal(result.vector.keypoints, direct.keypoints)
        np.testing.assert_array_equal(result.vector.descriptors, direct.descriptors)
