"""The pair detector: one digit or two touching digits (``preprocess._pairs``), its NumPy
forward pass against the torch network it was trained as, and its training command."""

from __future__ import annotations

import numpy as np
import pytest

from digitnet.errors import CheckpointError
from digitnet.preprocess._pairs import PAIR_WEIGHTS, pair_probability


@pytest.fixture(scope="module")
def allograph_examples():
    # Digits no pair of which was seen in training (pairs are made from MNIST only), drawn
    # with other seeds than the training pool's: 200 single digits and 200 touching pairs.
    from digitnet.data import allographs
    from digitnet.engine.pair_detector import make_examples

    digits, _ = allographs.training_pool(300, seed=5)
    return make_examples(digits, 400, seed=3)


def test_numpy_forward_pass_is_the_torch_network(allograph_examples):
    import torch

    from digitnet.engine.pair_detector import _NAMES, _network

    net = _network()
    with np.load(PAIR_WEIGHTS, allow_pickle=False) as f:
        state = {
            f"{i}.{part}": torch.from_numpy(f[f"{name}.{part}"])
            for i, name in _NAMES.items()
            for part in ("weight", "bias")
        }
    net.load_state_dict(state)
    net.eval()
    rng = np.random.default_rng(0)
    x = np.concatenate([allograph_examples[0][:64], rng.random((8, 28, 28), np.float32)])
    with torch.no_grad():
        ref = torch.sigmoid(net(torch.from_numpy(x)[:, None])).squeeze(1).numpy()
    np.testing.assert_allclose(pair_probability(x), ref, atol=2e-5)
    # In chunks or all at once, the same answers (a block of images brings many crops).
    many = np.concatenate([x] * 3)
    np.testing.assert_allclose(pair_probability(many), np.concatenate([ref] * 3), atol=2e-5)


def test_shipped_detector_tells_one_digit_from_two(allograph_examples):
    from digitnet.preprocess._choose import PAIR_AT

    x, y = allograph_examples
    two = pair_probability(x) >= PAIR_AT
    assert np.mean(two[y == 0]) <= 0.02, "single digits taken for two"
    assert np.mean(two[y == 1]) >= 0.95, "touching pairs missed"


def test_bad_input_and_bad_weights_are_refused(tmp_path):
    assert pair_probability(np.zeros((0, 28, 28))).shape == (0,)
    with pytest.raises(ValueError, match=r"\(N, 28, 28\)"):
        pair_probability(np.zeros((2, 20, 20)))
    bad = tmp_path / "bad.npz"
    with np.load(PAIR_WEIGHTS, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["fc1.weight"] = arrays["fc1.weight"][:, :100]
    np.savez(bad, **arrays)
    with pytest.raises(CheckpointError, match=r"fc1\.weight has shape"):
        pair_probability(np.zeros((1, 28, 28)), path=bad)
    # A missing or damaged file (a broken install): one line naming it.
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(PAIR_WEIGHTS.read_bytes()[:5000])
    for path in (tmp_path / "missing.npz", truncated):
        with pytest.raises(CheckpointError, match=r"detector weights cannot be read") as e:
            pair_probability(np.zeros((1, 28, 28)), path=path)
        assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_training_is_seeded_and_makes_the_shapes_the_reader_loads():
    from digitnet.data import allographs
    from digitnet.engine.pair_detector import make_examples, train
    from digitnet.preprocess._pairs import _SHAPES

    digits, _ = allographs.training_pool(60, seed=1)
    x, y = make_examples(digits, 256, seed=0)
    assert set(np.unique(y)) == {0, 1} and x.shape == (256, 28, 28) and x.max() <= 1.0
    a = train(x, y, epochs=1, seed=0, log=lambda _: None)
    b = train(x, y, epochs=1, seed=0, log=lambda _: None)
    assert {k: v.shape for k, v in a.items()} == _SHAPES
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
