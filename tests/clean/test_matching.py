"""The batched matcher against the one-pair reference, lookalike.rerank.spatial.match_features."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.clean.matching import match_many, pad_descriptors
from lookalike.errors import LookalikeError
from lookalike.rerank.spatial import match_features
from tests.conftest import scene


def _rootsift(images):
    pytest.importorskip("cv2")
    from lookalike.descriptors.local.registry import create_local

    sift = create_local("sift")
    return [sift(np.asarray(image)).descriptors for image in images]


@pytest.mark.parametrize("method", ["mutual", "ratio"])
def test_one_against_many_equals_pair_by_pair(method):
    rng = np.random.default_rng(0)
    base = scene(3, (200, 150))
    images = [base, base.rotate(10), base.crop((20, 10, 180, 140)), scene(4, (200, 150))]
    unit = _rootsift(images) + [np.zeros((0, 128), np.float32), rng.random((1, 128), dtype=np.float32)]
    plain = [rng.normal(size=(n, 16)).astype(np.float32) for n in (30, 1, 0, 45, 12)]  # not unit length
    for descriptors in (unit, plain):
        stacked, counts = pad_descriptors(descriptors)
        for a in descriptors:
            batched = match_many(a, stacked, counts, method=method)
            for b, got in zip(descriptors, batched):
                assert np.array_equal(got, match_features(a, b, method=method)), (len(a), len(b))


def test_bad_shapes_and_methods_are_refused():
    stacked, counts = pad_descriptors([np.ones((3, 8), np.float32)])
    with pytest.raises(LookalikeError, match="'nearest'"):
        match_many(np.ones((2, 8)), stacked, counts, method="nearest")
    with pytest.raises(LookalikeError, match=r"\(Ta, D\)"):
        match_many(np.ones((2, 4)), stacked, counts)
