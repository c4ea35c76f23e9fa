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


def test_views_are_what_the_descriptor_sums():
    from lookalike.crossmodal.features import vector_and_views

    image = np.asarray(scene(4, (150, 110)))
    flipped = create("gem-flip", scales=(1.0, 0.7071), threads=1)
    gem = create("gem", scales=(1.0, 0.7071), threads=1)
    views = flipped.views(image)  # the 2 scales of the image, then of its mirror image
    assert views.shape == (4, flipped.dim)
    np.testing.assert_allclose(views[:2], gem.views(image), atol=1e-6)
    np.testing.assert_allclose(views[2:], gem.views(np.ascontiguousarray(image[:, ::-1])), atol=1e-6)
    np.testing.assert_allclose(views[1], create("gem", scales=(0.7071,), threads=1)(image), atol=1e-6)
    rows = vector_and_views(flipped, image)
    np.testing.assert_allclose(rows[0], flipped(image), atol=1e-6)
    np.testing.assert_allclose(rows[1:], views, atol=1e-6)
