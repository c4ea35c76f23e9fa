"""gem-flip: GeM of the image and its mirror image, against the registered GeM."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from lookalike.descriptors import create  # noqa: E402
from tests.conftest import scene  # noqa: E402


def test_gem_flip_is_gem_of_both_views_and_mirror_invariant():
    image = np.asarray(scene(3, (160, 120)))
    flipped = create("gem-flip", scales=(1.0,), threads=1)
    gem = create("gem", scales=(1.0,), threads=1)
    both = gem(image) + gem(np.ascontiguousarray(image[:, ::-1]))
    np.testing.assert_allclose(flipped(image), both / np.linalg.norm(both), atol=1e-5)
    two_scales = create("gem-flip", scales=(1.0, 0.7071), threads=1)
    np.testing.assert_allclose(two_scales(image), two_scales(np.ascontiguousarray(image[:, ::-1])), atol=1e-5)
    assert not np.allclose(gem(image), gem(np.ascontiguousarray(image[:, ::-1])), atol=1e-3)
