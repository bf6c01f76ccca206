"""The stroke-by-stroke allograph generator (digitnet.data.allographs)."""

from __future__ import annotations

import numpy as np
import pytest

from digitnet.data.allographs import STYLES, draw, styles_of, training_pool


def test_every_digit_has_several_styles_including_the_ones_mnist_lacks():
    for d in range(10):
        assert len(styles_of(d)) >= 2, d
    for key in [
        (1, "long_flag"),
        (1, "flag_base"),
        (7, "crossed"),
        (4, "open"),
        (9, "straight"),
        (2, "looped"),
        (3, "flat_top"),
    ]:
        assert key in STYLES


@pytest.mark.parametrize("key", list(STYLES))
def test_draw_gives_ink_of_the_requested_height(key):
    rng = np.random.default_rng(0)
    ink = draw(*key, rng, height=60, margin=0.0)
    assert ink.dtype == np.float32 and ink.min() >= 0 and ink.max() <= 1
    rows = np.flatnonzero(ink.max(1) > 0.5)
    # The digit's strokes span the height plus at most a pen width.
    assert 55 <= rows[-1] - rows[0] + 1 <= 60 + 0.16 * 60 + 3
    assert 0.03 < float((ink > 0.5).mean()) < 0.6


def test_draw_is_repeatable_and_seeds_differ():
    a = draw(7, "crossed", np.random.default_rng(3))
    b = draw(7, "crossed", np.random.default_rng(3))
    c = draw(7, "crossed", np.random.default_rng(4))
    assert np.array_equal(a, b)
    assert a.shape != c.shape or not np.array_equal(a, c)


def test_pressure_varies_the_stroke_width():
    rng = np.random.default_rng(5)
    flat = draw(0, "oval", rng, width=0.1, slant=0, aspect=1, rotate=0, jitter=0)
    varied = draw(
        0,
        "oval",
        np.random.default_rng(5),
        width=0.1,
        slant=0,
        aspect=1,
        rotate=0,
        jitter=0,
        pressure=0.6,
    )
    from scipy import ndimage as ndi

    def thickest(ink):
        return float(ndi.distance_transform_edt(ink > 0.5).max())

    assert thickest(varied) > 1.2 * thickest(flat)


def test_training_pool_is_mnist_style_and_balanced():
    x, y = training_pool(200, seed=0)
    assert x.shape == (200, 28, 28) and x.dtype == np.uint8
    assert np.bincount(y, minlength=10).tolist() == [20] * 10
    # MNIST framing: a 20x20 box centred by centre of mass, so the outer 2 px are nearly
    # always dark (a long stroke can be pushed into them, as in MNIST itself).
    ring = np.concatenate(
        [
            x[:, :2].reshape(200, -1),
            x[:, -2:].reshape(200, -1),
            x[:, :, :2].reshape(200, -1),
            x[:, :, -2:].reshape(200, -1),
        ],
        1,
    )
    assert (ring.max(1) > 0).mean() < 0.2
    assert (x.reshape(200, -1).max(1) == 255).all()
    x2, y2 = training_pool(200, seed=0)
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
