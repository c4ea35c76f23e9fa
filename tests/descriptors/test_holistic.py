"""Closed-form checks of the global descriptors: colour histograms, edge histograms, GIST."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.descriptors import create
from lookalike.descriptors.holistic.color import srgb_to_lab
from lookalike.descriptors.holistic.gist import gabor_bank
from lookalike.errors import LookalikeError


def test_color_histogram_of_two_colours():
    image = np.zeros((10, 10, 3), np.uint8)
    image[:, :5] = (255, 0, 0)  # 50 red pixels
    image[:, 5:] = (0, 0, 255)  # 50 blue pixels
    descriptor = create("color-hist", space="rgb", bins=(2, 2, 2))
    hist = descriptor.histogram(image)
    # joint index (r * 2 + g) * 2 + b: red -> (1, 0, 0) = 4, blue -> (0, 0, 1) = 1
    expected = np.zeros(8, np.float32)
    expected[[4, 1]] = 0.5
    np.testing.assert_array_equal(hist, expected)


def test_color_histogram_hellinger_is_sqrt():
    image = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    descriptor = create("color-hist", compare="hellinger")
    np.testing.assert_allclose(descriptor(image) ** 2, descriptor.histogram(image), atol=1e-7)
    assert descriptor.dim == 8 * 4 * 4


@pytest.mark.parametrize("compare", ["chi2", "intersection", "hellinger"])
def test_color_histogram_is_recoverable_from_vector(compare):
    image = np.random.default_rng(1).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    descriptor = create("color-hist", compare=compare, space="lab")
    recovered = descriptor.histogram_from_vector(descriptor(image)[None])[0]
    np.testing.assert_allclose(recovered, descriptor.histogram(image), atol=1e-6)


def test_lab_reference_values():
    # CIE L*a*b* of sRGB primaries and white (D65), as given by colour-science references.
    rgb = np.array([[255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255], [0, 0, 0]], np.uint8)
    expected = [[100, 0, 0], [53.24, 80.09, 67.20], [87.73, -86.18, 83.18],
                [32.30, 79.19, -107.86], [0, 0, 0]]
    np.testing.assert_allclose(srgb_to_lab(rgb), expected, atol=0.05)


def test_color_histogram_rejects_bad_options():
    with pytest.raises(LookalikeError, match="space="):
        create("color-hist", space="cmyk")
    with pytest.raises(LookalikeError, match="compare="):
        create("color-hist", compare="emd")


def test_edge_histogram_of_vertical_stripes():
    stripes = np.zeros((64, 64, 3), np.uint8)
    stripes[:, ::8] = 255  # vertical edges: horizontal gradient, orientation 0
    descriptor = create("edge-hist", grid=(1, 1), orientations=4)
    hist = descriptor(stripes) ** 2  # undo the square root
    # bins are centred at 22.5, 67.5, 112.5 and 157.5 degrees: a 0-degree gradient lies halfway
    # between bin 0 and bin 3 (wrapping around 180 degrees) and votes equally for both
    assert hist[0] == pytest.approx(0.5, abs=0.02) and hist[3] == pytest.approx(0.5, abs=0.02)


def test_edge_histogram_rotation_moves_mass():
    image = np.zeros((64, 64, 3), np.uint8)
    image[:, 32:] = 255
    descriptor = create("edge-hist", grid=(1, 1), orientations=8)
    vertical_edge = np.argmax(descriptor(image))
    horizontal_edge = np.argmax(descriptor(np.ascontiguousarray(image.transpose(1, 0, 2))))
    assert abs(int(vertical_edge) - int(horizontal_edge)) in (3, 4, 5)  # about 90 degrees apart


def test_edge_histogram_grid_layout():
    image = np.zeros((64, 64, 3), np.uint8)
    image[:24, :24] = 255  # edges only inside the top-left cell
    descriptor = create("edge-hist", grid=(2, 2), orientations=4)
    cells = (descriptor(image) ** 2).reshape(2, 2, 4).sum(axis=2)
    assert cells[1, 1] < 1e-6  # the bottom-right cell is flat
    assert descriptor.dim == 16


def test_gist_dimensions():
    assert create("gist").dim == 512
    assert create("gist", color=True).dim == 1536
    assert create("gist", orientations=(8, 8, 4), blocks=2).dim == 80


def test_gabor_bank_peaks_at_its_frequency():
    bank = gabor_bank(128, (4, 4))
    assert bank.shape == (8, 128, 128)
    freq = np.fft.fftfreq(128)
    fy, fx = np.meshgrid(freq, freq, indexing="ij")
    radius = np.hypot(fx, fy)
    for index, centre in [(0, 0.3), (4, 0.3 / 1.85)]:
        peak = np.unravel_index(np.argmax(bank[index]), bank[index].shape)
        assert radius[peak] == pytest.approx(centre, abs=1.5 / 128)


def test_gist_sees_orientation():
    """Vertical stripes excite the filters tuned to horizontal frequencies more than horizontal ones."""
    stripes = np.zeros((128, 128, 3), np.uint8)
    stripes[:, ::6] = 255
    stripes[:, 1::6] = 255
    d = create("gist", image_size=128, blocks=1, orientations=(4,))
    vertical = d(stripes)
    horizontal = d(np.ascontiguousarray(stripes.transpose(1, 0, 2)))
    assert np.argmax(vertical) != np.argmax(horizontal)
    assert abs(int(np.argmax(vertical)) - int(np.argmax(horizontal))) == 2  # 90 degrees = 2 of 4 bins
