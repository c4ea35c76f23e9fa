"""The copy-detection augmentations: seeded, so the same seed gives the same copies."""

from __future__ import annotations

import dataclasses

import numpy as np

from lookalike.train.augment import AugmentConfig, augment, colour_jitter, jpeg, random_resized_crop
from tests.conftest import scene

ALWAYS = AugmentConfig(flip=1, rotate=1, colour=1, grayscale=0, blur=1, overlay=1, jpeg=1, downscale=1)


def test_the_same_seed_gives_the_same_copies_and_another_seed_others():
    image = scene(5, (160, 120))
    for config in (AugmentConfig(), ALWAYS):
        first = [augment(image, 64, np.random.default_rng(7), config) for _ in range(2)]
        assert first[0].shape == (3, 64, 64) and first[0].dtype == np.uint8
        assert np.array_equal(first[0], first[1])
        stream = np.random.default_rng(7)
        copies = [augment(image, 64, stream, config) for _ in range(3)]
        assert np.array_equal(copies[0], first[0])  # the first draw of the stream is the seeded copy
        assert not np.array_equal(copies[1], copies[2])


def test_each_edit_changes_the_image_as_it_says():
    image = scene(2, (120, 120))
    rng = np.random.default_rng(0)
    crop = random_resized_crop(image, 50, rng, min_area=1.0, max_aspect=1.0)  # the whole image, squashed
    assert crop.size == (50, 50)
    assert np.abs(np.asarray(crop, float) - np.asarray(image.resize((50, 50)), float)).mean() < 8
    assert np.array_equal(np.asarray(colour_jitter(image, rng, 0.0)), np.asarray(image.convert("HSV").convert("RGB")))
    worse, better = jpeg(image, 5), jpeg(image, 95)
    error = [np.abs(np.asarray(x, float) - np.asarray(image, float)).mean() for x in (worse, better)]
    assert error[0] > 2 * error[1]
    none = dataclasses.replace(AugmentConfig(), flip=0, rotate=0, colour=0, grayscale=0, blur=0, overlay=0, jpeg=0,
                               downscale=0, min_area=1.0, max_aspect=1.0)
    assert np.array_equal(augment(image, 50, np.random.default_rng(0), none), np.asarray(crop).transpose(2, 0, 1))
