"""Local-feature extractors by name: SIFT through the registry keeps the input image's coordinates."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.descriptors.local.registry import create_local, local_from_spec
from lookalike.errors import LookalikeError

pytest.importorskip("cv2")
skimage_data = pytest.importorskip("skimage.data")


def test_sift_keypoints_are_in_the_input_images_pixels():
    from PIL import Image

    small = skimage_data.astronaut()  # 512 x 512: SIFT's working size
    big = np.asarray(Image.fromarray(small).resize((1024, 1024), Image.Resampling.BILINEAR))
    sift = create_local("sift", max_keypoints=300)
    a, b = sift(small), sift(big)
    assert b.size == (1024, 1024) and a.size == (512, 512)
    assert b.keypoints[:, 0].max() > 600 and (b.keypoints[:, :2] < 1024).all()
    # the big image is shrunk back to 512 px inside: nearly the same keypoints, twice the coordinates
    mapped = (b.keypoints[:, :2] + 0.5) / 2 - 0.5
    nearest = np.sqrt(((a.keypoints[:, None, :2] - mapped[None]) ** 2).sum(-1)).min(axis=1)
    assert np.median(nearest) < 0.5  # the strongest 300 differ a little after two resamplings
    assert local_from_spec(sift.spec()).config == sift.config
    with pytest.raises(LookalikeError, match="expected an RGB image"):
        sift(small[..., 0])
