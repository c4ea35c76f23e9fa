"""The numpy pooling of the ONNX engine against the torch pooling, on real photographs' feature maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lookalike.descriptors import create
from lookalike.descriptors.cnn import numpy_pooling, pooling
from lookalike.descriptors.cnn.backbone import load_backbone
from lookalike.descriptors.cnn.inputs import scaled_inputs

skimage_data = pytest.importorskip("skimage.data")


@pytest.fixture(scope="module")
def feature_maps() -> list[np.ndarray]:
    """EfficientNet-Lite0's last feature maps ``[1, 1280, h, w]`` of three photographs, at two sizes."""
    backbone = load_backbone()
    maps = []
    for image in (skimage_data.chelsea(), skimage_data.coffee(), skimage_data.rocket()):
        for pixels in scaled_inputs(image, 320, (1.0, 0.5)):
            with torch.inference_mode():
                maps.append(backbone(torch.from_numpy(pixels[None])).numpy())
    return maps


@pytest.mark.parametrize("name, torch_pool, numpy_pool", [
    ("average", lambda x: x.mean(dim=(2, 3)), numpy_pooling.average),
    ("mac", pooling.mac, numpy_pooling.mac),
    ("spoc", pooling.spoc, numpy_pooling.spoc),
    ("spoc without prior", lambda x: pooling.spoc(x, prior=False), lambda x: numpy_pooling.spoc(x, prior=False)),
    ("crow", pooling.crow, numpy_pooling.crow),
    ("gem p=3", pooling.gem, numpy_pooling.gem),
    ("gem p=2.7", lambda x: pooling.gem(x, 2.7), lambda x: numpy_pooling.gem(x, 2.7)),
    ("gem p=20", lambda x: pooling.gem(x, 20.0), lambda x: numpy_pooling.gem(x, 20.0)),
    ("rmac", pooling.rmac, numpy_pooling.rmac),
])
def test_numpy_pooling_equals_torch_pooling(feature_maps, name, torch_pool, numpy_pool):
    for x in feature_maps:
        assert (x == 0).any() and x.shape[2] != x.shape[3]  # ReLU zeros, and a non-square map (R-MAC's regions)
        got = numpy_pool(x)
        assert got.dtype == np.float32 and got.shape == (1, 1280), name
        np.testing.assert_allclose(got, torch_pool(torch.from_numpy(x)).numpy(), rtol=2e-5, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("name", ["cnn-fc", "mac", "spoc", "crow", "rmac", "gem", "netvlad"])
def test_the_onnx_path_pools_in_numpy_as_the_torch_path_does(feature_maps, name, tmp_path):
    """``pool_array`` (numpy, or torch behind it for NetVLAD) equals ``pool`` on the same map."""
    options = {}
    if name == "netvlad":  # centres from the maps themselves
        from lookalike.descriptors.cnn.registered import NetVlad

        sample = [x[0].reshape(1280, -1).T for x in feature_maps]
        options = {"k": 4, "vocabulary": str(NetVlad(k=4).fit(sample, tmp_path / "netvlad.npz").config.vocabulary)}
    descriptor = create(name, **options)
    for x in feature_maps:
        np.testing.assert_allclose(descriptor.pool_array(x), descriptor.pool(torch.from_numpy(x)).numpy(),
                                   rtol=2e-5, atol=1e-6, err_msg=name)


def test_multi_scale_vectors_agree_between_the_numpy_and_torch_paths():
    """End to end at three scales (the default descriptor): ONNX forward + numpy pooling against
    eager torch + torch pooling."""
    image = skimage_data.rocket()
    onnx = create("gem", scales=(1.0, 0.7071, 0.5), max_side=256, engine="onnx")(image)
    eager = create("gem", scales=(1.0, 0.7071, 0.5), max_side=256, engine="torch")(image)
    assert onnx.dtype == np.float32 and abs(np.linalg.norm(onnx) - 1) < 1e-5
    np.testing.assert_allclose(onnx, eager, atol=1e-4)

