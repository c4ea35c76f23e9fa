"""The offline backbone, its two engines, and the deep descriptors end to end."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lookalike.descriptors import create
from lookalike.descriptors.cnn.backbone import load_backbone, read_state_dict
from lookalike.descriptors.cnn.efficientnet import EfficientNetLite
from lookalike.errors import LookalikeError
from lookalike.index import Collection
from lookalike.pipelines.extract import extract
from lookalike.pipelines.indexing import index_paths
from lookalike.pipelines.searching import search_image
from tests.conftest import scene

skimage_data = pytest.importorskip("skimage.data")
POOLINGS = ["cnn-fc", "mac", "spoc", "crow", "rmac", "gem"]


def top_classes(image: np.ndarray, k: int = 3) -> list[int]:
    backbone = load_backbone()
    pixels = np.asarray(torch.nn.functional.interpolate(
        torch.from_numpy(image).permute(2, 0, 1)[None].float(), size=(224, 224), mode="bilinear",
        antialias=True))
    with torch.inference_mode():
        logits = backbone.classifier(backbone(torch.from_numpy(pixels)).mean(dim=(2, 3)))
    return logits[0].topk(k).indices.tolist()


def test_packaged_imagenet_weights_recognise_a_cat_and_an_espresso():
    assert top_classes(skimage_data.chelsea())[0] in range(281, 286)  # tabby .. Egyptian cat
    assert top_classes(skimage_data.coffee())[0] in (967, 968)  # espresso, cup


def test_onnx_runtime_and_torch_give_the_same_descriptors():
    images = [skimage_data.chelsea(), np.asarray(scene(3, (200, 300)))]
    for name in POOLINGS:
        for image in images:
            a = create(name, engine="torch")(image)
            b = create(name, engine="onnx")(image)
            np.testing.assert_allclose(a, b, atol=1e-4, err_msg=name)


def test_aspect_ratio_is_kept_and_scales_are_averaged():
    descriptor = create("gem", max_side=150, scales=(1.0, 0.5))
    image = np.asarray(scene(1, (300, 200)))
    assert [p.shape for p in descriptor.prepare(image)] == [(3, 100, 150), (3, 50, 75)]
    small = create("gem", max_side=40)(np.zeros((10, 20, 3), np.uint8))  # enlarged to the network's minimum
    assert np.isfinite(small).all()
    one, half = create("gem", max_side=150)(image), create("gem", max_side=75)(image)
    mean = one + half
    np.testing.assert_allclose(descriptor(image), mean / np.linalg.norm(mean), atol=1e-5)
    assert create("cnn-fc").prepare(image)[0].shape == (3, 224, 224)  # squashed, as the classifier was trained


def test_local_state_dict_loads_through_the_backbone_interface(tmp_path):
    state = read_state_dict(_packaged_path())
    state["_bn1.bias"] = state["_bn1.bias"] + 1.0  # a fine-tuned head, say
    torch.save({"state_dict": state}, tmp_path / "tuned.pth")  # cirtorch-style wrapping
    image = np.asarray(scene(2))
    tuned = create("mac", weights=str(tmp_path / "tuned.pth"), engine="onnx")
    assert not np.allclose(tuned(image), create("mac", engine="onnx")(image), atol=1e-3)
    network = EfficientNetLite().eval()
    network.load_state_dict(state)
    with torch.inference_mode():
        expected = network.features((torch.tensor(image).permute(2, 0, 1)[None].float() - 127) / 128)
    expected = torch.nn.functional.normalize(expected.amax(dim=(2, 3)), dim=1)[0].numpy()
    np.testing.assert_allclose(tuned(image), expected, atol=1e-4)
    torch.save({"conv.weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(LookalikeError, match="other.pth: these weights do not fit"):
        _ = create("mac", weights=str(tmp_path / "other.pth")).dim
    with pytest.raises(LookalikeError, match="not found"):
        create("mac", weights=str(tmp_path / "missing.pth"))


def _packaged_path() -> str:
    from lookalike.descriptors.cnn.catalog import packaged_weights

    return packaged_weights("lite0")


def test_timm_backbone_with_a_local_state_dict(tmp_path):
    timm = pytest.importorskip("timm")
    network = timm.create_model("resnet18", pretrained=False, num_classes=0, global_pool="")
    torch.save(network.state_dict(), tmp_path / "r18.pth")
    vector = create("gem", backbone="timm:resnet18", weights=str(tmp_path / "r18.pth"), engine="torch")(
        np.asarray(scene(0)))
    assert vector.shape == (512,)


def test_bad_options_are_clear():
    with pytest.raises(LookalikeError, match="engine must be one of"):
        create("gem", engine="tensorrt")
    with pytest.raises(LookalikeError, match="unknown backbone"):
        _ = create("gem", backbone="vgg16").dim
    with pytest.raises(LookalikeError, match="netvlad needs k-means centres"):
        create("netvlad")(np.asarray(scene(0)))


def test_pipeline_in_workers_matches_in_process_and_reports_bad_files(tmp_path, image_dir):
    (image_dir / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    paths = sorted(image_dir.iterdir())
    descriptor = create("gem", max_side=96)
    parallel = dict(extract(descriptor, paths, workers=2, progress=None))
    assert "broken.jpg" in str(parallel[image_dir / "broken.jpg"])
    for path in paths:
        if path.name != "broken.jpg":
            from lookalike.io.images import load_image

            pixels = load_image(path, max_side=96).pixels
            np.testing.assert_allclose(parallel[path].vector, descriptor(pixels), atol=1e-5)


def test_collection_with_a_deep_descriptor_reloads_and_searches_identically(tmp_path):
    (tmp_path / "scenes").mkdir()
    for s in range(8):
        scene(s).save(tmp_path / "scenes" / f"scene{s}.jpg")
    scene(3).crop((10, 10, 230, 170)).save(tmp_path / "query.jpg", quality=60)
    with Collection.create(tmp_path / "c", create("gem", max_side=128)) as store:
        index_paths(store, [tmp_path / "scenes"], workers=2, progress=False)
        before = [(h.path, h.score) for h in search_image(store, tmp_path / "query.jpg", k=5)]
    with Collection.open(tmp_path / "c") as again:
        after = [(h.path, h.score) for h in search_image(again, tmp_path / "query.jpg", k=5)]
    assert before == after and before[0][0].endswith("scene3.jpg")
