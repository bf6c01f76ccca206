"""The training loop of ``adapt_model``, its settings, and the adapted checkpoint's metadata.

The settings (augmentation, batch mix, learning rate, L2-SP strength, early stop, weight
average) were chosen with benchmarks/bench_adapt.py; each is explained where it is set.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, UsageError
from ._examples import ExampleSet, NoExamplesError, read_examples
from ._paths import check_out, output_path
from ._results import AdaptMode, AdaptProgress, AdaptResult, StopReason

# Numbers below were chosen with benchmarks/bench_adapt.py (scikit-learn's load_digits rendered
# as user images, 5 examples per digit; MNIST test accuracy of the result), on 2 CPU cores.

# Augmentation of the user's examples: the base recipe's transforms, a little stronger in
# stroke width (people's pens differ more than MNIST's), so 5 examples of a digit stand for the
# many ways that writer draws it.
_USER_AUG = dict(rotate=12.0, scale=0.15, translate=2.5, shear=10.0, elastic=1.2, thickness=0.6)
# Augmentation of the replayed MNIST images: the bundled model's training recipe.
_REPLAY_AUG = dict(rotate=12.0, scale=0.15, translate=2.5, shear=8.0, elastic=1.0, thickness=0.3)
# Batches of 64 (16 + 48): on 2 busy CPU cores one step of 128 takes about 0.8 s, of 64 about
# 0.3 s; more, smaller steps learn more in the same minute.
_USER_PER_BATCH = 16  # augmented copies of the examples in each batch
_REPLAY_PER_BATCH = 48  # replayed MNIST images in each batch (3 of every 4: keeps MNIST)
_LR = {"replay": 0.003, "l2sp": 0.003}  # SGD with momentum 0.9, constant after a short warm-up
_WARMUP_STEPS = 10
# L2-SP strength: alpha/2 * sum((w - w_base)^2) added to the loss. With replay a light pull
# (replay is what keeps MNIST). Without it, the pull is what holds the classifier near the
# base: alpha 1.0 cost MNIST 0.14 points for +2.9 on load_digits, alpha 0.01 cost 0.4 points
# for +5.6 (bench_adapt.py, 5 per digit); the smaller MNIST cost is the one the issue asks.
_L2SP = {"replay": 1e-3, "l2sp": 1.0}
# Early stop: checked every _CHECK_EVERY steps, after at least _MIN_STEPS.
_CHECK_EVERY = 10
_MIN_STEPS = 60
_FIT_AUG_ACCURACY = 0.98  # share of a fresh augmented copy of every example read right
# The saved weights are an exponential moving average of the steps' weights (decay per step;
# 0 = the last step's weights): constant-rate SGD leaves the weights noisy, and MNIST, which
# the base reached at the end of an annealed schedule, pays for that noise.
_EMA = 0.95
_SAVE_RESERVE_S = 1.0  # time kept back from the budget for writing the checkpoint
_PROGRESS_EVERY_S = 0.25


def _replay_data(data_dir: str | os.PathLike[str] | None) -> tuple[np.ndarray, np.ndarray] | None:
    """MNIST training images for replay, or None when this machine has none.

    A ``data_dir`` given explicitly must hold them (a DataError says what is wrong); without
    one, ``$DIGITNET_DATA`` and the user cache are tried quietly.
    """
    from ..data.mnist import load_mnist, resolve_data_dir

    try:
        return load_mnist(resolve_data_dir(data_dir), "train")
    except DataError:
        if data_dir is not None:
            raise
        return None


# Allograph replay: the base's synthetic allographs (data/allographs.py), replayed in the share
# of the MNIST images the base's recipe trained on them (0.1 for the bundled model), from a pool
# of at most _ALLOGRAPH_POOL (drawing one takes about 1 ms), repeated up to that share. Without
# them, adapting wears away what the base learnt from them: at 20 examples per digit of
# load_digits the allograph population lost 0.4-0.8 points, with them it holds or gains (98.97
# -> 99.38 / 99.18 / 98.97%, bench_adapt.py seeds 0-2; load_digits 97.81 / 97.34 / 97.46%
# against 97.65 / 97.24 / 97.50% without; at 5 per digit 95.82 / 95.59 / 96.11% against 95.74 /
# 95.88 / 96.39%, within the spread of seeds).
_ALLOGRAPH_POOL = 1000
_ALLOGRAPH_SEED = 12345


def _allograph_replay(
    base_meta: dict[str, Any], n_mnist: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """The allographs to replay beside ``n_mnist`` MNIST images, or None when the base's
    recipe trained on none."""
    aug = (base_meta.get("config") or {}).get("augment") or {}
    share = float(aug.get("allographs") or 0.0) if aug.get("enabled") else 0.0
    want = round(share * n_mnist)
    if want <= 0:
        return None
    from ..data.allographs import training_pool

    pool = min(want, _ALLOGRAPH_POOL)
    x, y = training_pool(pool, _ALLOGRAPH_SEED)
    reps = max(1, round(want / pool))
    return np.concatenate([x] * reps), np.concatenate([y] * reps)


# Which layers learn. With replay: the last convolution stage and the classifier (all layers
# learnt no more on the new writers and cost MNIST 0.3 points instead of 0.2, in
# bench_adapt.py's runs; the steps are also 2-3x cheaper, backward stops at the last stage).
# Without replay: the classifier only (trained on the examples alone, the last stage too cost
# MNIST 0.7 points). Early layers (strokes, edges) are shared by every writer; what differs
# between writers is how those parts are assembled into digits.
_TRAIN = {"replay": "top", "l2sp": "head"}


def _trainable(model, mode: AdaptMode) -> tuple[list[Any], str]:
    """The parameters to train, and their description."""
    import torch.nn as nn

    which = _TRAIN[mode]
    if which == "all":
        return list(model.parameters()), "all"
    features = getattr(model, "features", None)
    head = getattr(model, "head", None)
    if isinstance(features, nn.Sequential) and isinstance(head, nn.Module):
        params = list(head.parameters())
        if which == "head":
            return params, "head"
        convs = [i for i, m in enumerate(features) if isinstance(m, nn.Conv2d)]
        start = convs[-1] if convs else len(features)
        params = [p for m in list(features)[start:] for p in m.parameters()] + params
        return params, f"features[{start}:] and head"
    # A model of another shape: its last two parameterised modules (one for "head").
    mods = [m for m in model.modules() if any(True for _ in m.parameters(recurse=False))]
    mods = mods[-1:] if which == "head" else mods[-2:]
    params = [p for m in mods for p in m.parameters(recurse=False)]
    return params, "last layer" if which == "head" else "last two layers"


def _accuracy(model, x, y) -> float:
    import torch

    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def adapt_model(
    examples: Sequence[str | os.PathLike[str]] | ExampleSet,
    *,
    out: str | os.PathLike[str],
    base: str | os.PathLike[str] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    seconds: float = 60.0,
    seed: int = 0,
    progress: Callable[[AdaptProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> AdaptResult:
    """Fine-tune ``base`` (None: the bundled model) on ``examples`` and save it to ``out``.

    ``examples``: image files / folders (``read_examples``) or an ``ExampleSet``. ``seconds``
    bounds the whole call (reading included); training stops earlier once the examples are
    fit. ``progress(AdaptProgress)`` is called a few times a second from the calling thread;
    ``should_stop()`` is polled every step, and when it returns True training ends and nothing
    is written (``result.checkpoint is None``, ``result.stopped == "cancelled"``).

    Raises ``UsageError`` for a bad ``out`` (the base model itself, an example file, a folder,
    another suffix), ``ImageError`` when no example is usable, ``CheckpointError`` for a bad
    base, ``DataError`` for an explicit ``data_dir`` without MNIST training files.
    """
    t0 = time.monotonic()
    if not seconds > 0:
        raise UsageError(f"--seconds must be positive, not {seconds}")
    from ..inference import bundled_model_path

    base_path = Path(base) if base is not None else bundled_model_path()
    out_path = output_path(out)
    if isinstance(examples, ExampleSet):
        exset = examples
        if len(exset) == 0:
            raise NoExamplesError("no examples given")
    else:
        check_out(out, base_path, [str(p) for p in examples])
        exset = read_examples(examples)
    check_out(out, base_path, exset.sources)

    import torch
    import torch.nn.functional as F

    from ..checkpoint import save_checkpoint
    from ..data.tensors import DeviceDataset, augment_batch
    from ..engine.config import AugmentConfig
    from ..inference import DEFAULT_INPUT, load_predictor

    # The one loading function (schema, weights and a sanity forward pass checked), torch side.
    loaded = load_predictor(base_path, backend="torch", device="cpu")
    model, base_meta = loaded.model, dict(loaded.meta)
    spec = base_meta.get("input") or dict(DEFAULT_INPUT)
    replay = _replay_data(data_dir)
    mode: AdaptMode = "replay" if replay is not None else "l2sp"
    smoothing = float((base_meta.get("config") or {}).get("label_smoothing") or 0.0)

    g = torch.Generator().manual_seed(seed)
    torch_seed_state = torch.random.get_rng_state()
    torch.manual_seed(seed)  # dropout is off (eval mode); this only fixes anything else random
    user = DeviceDataset.from_numpy(
        np.round(exset.images * 255).astype(np.uint8), exset.labels, spec, torch.device("cpu")
    )
    # ``from_numpy`` takes uint8 like MNIST; examples in [0, 1] go through it at 8 bits, the
    # precision every saved image has anyway.
    bg = user.background
    allo = _allograph_replay(base_meta, len(replay[1])) if replay is not None else None
    replay_ds = None
    if replay is not None:
        rx, ry = replay
        if allo is not None:
            rx, ry = np.concatenate([rx, allo[0]]), np.concatenate([ry, allo[1].astype(ry.dtype)])
        replay_ds = DeviceDataset.from_numpy(rx, ry, spec, torch.device("cpu"))
    user_aug = AugmentConfig(enabled=True, **_USER_AUG)
    replay_aug = AugmentConfig(enabled=True, **_REPLAY_AUG)

    model.eval()  # batch-norm statistics and dropout stay the base's (module docstring)
    # channels_last: about 25% less time per step on CPU (0.28 s against 0.37 s for a batch
    # of 64, measured on 2 busy cores); the saved weights are made contiguous again.
    model.to(memory_format=torch.channels_last)
    for p in model.parameters():
        p.requires_grad_(False)
    params, trained = _trainable(model, mode)
    for p in params:
        p.requires_grad_(True)
    anchors = [p.detach().clone() for p in params]
    averaged = [p.detach().clone() for p in params]
    alpha = _L2SP[mode]
    lr = _LR[mode]
    opt = torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True)

    acc_before = _accuracy(model, user.images, user.labels)
    deadline = t0 + seconds - _SAVE_RESERVE_S
    step, last_loss, fit_acc = 0, None, acc_before
    stopped: StopReason = "time"
    last_report = 0.0
    n_user = len(user)
    try:
        while True:
            now = time.monotonic()
            if should_stop is not None and should_stop():
                stopped = "cancelled"
                break
            if now >= deadline and step > 0:  # one step at least: the output is adapted
                stopped = "time"
                break
            if (
                step >= _MIN_STEPS
                and step % _CHECK_EVERY == 0
                and _fit(model, user, user_aug, g, bg)
            ):
                stopped = "fit"
                break
            for group in opt.param_groups:
                group["lr"] = lr * min(1.0, (step + 1) / _WARMUP_STEPS)
            idx = torch.randint(0, n_user, (_USER_PER_BATCH,), generator=g)
            xb = augment_batch(user.images[idx], user_aug, g, bg)
            yb = user.labels[idx]
            if replay_ds is not None:
                ridx = torch.randint(0, len(replay_ds), (_REPLAY_PER_BATCH,), generator=g)
                xb = torch.cat([xb, augment_batch(replay_ds.images[ridx], replay_aug, g, bg)])
                yb = torch.cat([yb, replay_ds.labels[ridx]])
            xb = xb.contiguous(memory_format=torch.channels_last)
            loss = F.cross_entropy(model(xb), yb, label_smoothing=smoothing)
            if alpha > 0:
                loss = loss + 0.5 * alpha * sum(
                    ((p - a) ** 2).sum() for p, a in zip(params, anchors, strict=True)
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            with torch.no_grad():
                # The first steps' weights weigh less: the average starts near the base.
                decay = min(_EMA, step / (step + 10.0))
                for a, p in zip(averaged, params, strict=True):
                    a.lerp_(p, 1.0 - decay)
            if progress is not None and now - last_report >= _PROGRESS_EVERY_S:
                last_report = now
                last_loss = float(loss.detach())
                fit_acc = _accuracy(model, user.images, user.labels)
                elapsed = time.monotonic() - t0
                frac = min(1.0, max(elapsed / seconds, fit_acc if step >= _MIN_STEPS else 0.0))
                progress(
                    AdaptProgress(step, elapsed, float(seconds), frac, last_loss, fit_acc, mode)
                )
    finally:
        torch.random.set_rng_state(torch_seed_state)
        for p in model.parameters():
            p.requires_grad_(False)
    if _EMA > 0 and step > 0:
        with torch.no_grad():
            for a, p in zip(averaged, params, strict=True):
                p.copy_(a)

    acc_after = _accuracy(model, user.images, user.labels)
    elapsed = time.monotonic() - t0
    result_kw: dict[str, Any] = dict(
        base=base_path,
        mode=mode,
        examples=n_user,
        per_digit=exset.per_digit,
        skipped=exset.skipped,
        steps=step,
        seconds=elapsed,
        stopped=stopped,
        accuracy_before=acc_before,
        accuracy_after=acc_after,
        replay_images=0 if replay is None else int(replay[1].shape[0]),
        replay_allographs=0 if allo is None else int(allo[1].shape[0]),
        trained_layers=trained,
    )
    if stopped == "cancelled":
        return AdaptResult(checkpoint=None, meta={}, **result_kw)

    meta = _adapted_meta(
        base_meta,
        base_path,
        exset,
        mode,
        step,
        elapsed,
        stopped,
        trained,
        acc_before,
        acc_after,
        result_kw["replay_images"],
        result_kw["replay_allographs"],
        seed,
    )
    written = save_checkpoint(out_path, model, meta)
    result_kw["seconds"] = time.monotonic() - t0
    meta["adapt"]["seconds"] = round(result_kw["seconds"], 2)
    if progress is not None:
        progress(
            AdaptProgress(
                step, result_kw["seconds"], float(seconds), 1.0, last_loss, acc_after, mode
            )
        )
    return AdaptResult(checkpoint=written, meta=meta, **result_kw)


def _fit(model, user, aug, g, bg) -> bool:
    """The examples are learnt: all read right as they are, and at least _FIT_AUG_ACCURACY of
    one fresh augmented copy of each read right too (the copies stand for the writer's other
    digits, which is what the person will write next)."""
    import torch

    from ..data.tensors import augment_batch

    with torch.no_grad():
        if not bool((model(user.images).argmax(1) == user.labels).all()):
            return False
        xa = augment_batch(user.images, aug, g, bg)
        return float((model(xa).argmax(1) == user.labels).float().mean()) >= _FIT_AUG_ACCURACY


# Keys of the base's metadata that describe that file, not the adapted one: those
# save_checkpoint writes itself, and the base's own measurements and provenance.
_NOT_INHERITED = {"metrics", "adapted_from", "adapt"}


def _adapted_meta(
    base_meta: dict[str, Any],
    base_path: Path,
    exset: ExampleSet,
    mode: AdaptMode,
    steps: int,
    seconds: float,
    stopped: StopReason,
    trained: str,
    acc_before: float,
    acc_after: float,
    replay_images: int,
    replay_allographs: int,
    seed: int,
) -> dict[str, Any]:
    """The base's metadata (model, input spec, calibration, recipe, data) plus what adapting
    did. The base's metrics are not carried over: they were measured on another network."""
    from ..checkpoint import WRITTEN_KEYS

    meta = {k: v for k, v in base_meta.items() if k not in _NOT_INHERITED and k not in WRITTEN_KEYS}
    meta["adapted_from"] = {
        "path": base_path.name,
        "save_id": base_meta.get("save_id"),
        "model": base_meta.get("model"),
        "test_accuracy": (base_meta.get("metrics") or {}).get("test_accuracy"),
    }
    meta["adapt"] = {
        "mode": mode,
        "examples": len(exset),
        "examples_per_digit": {str(k): v for k, v in exset.per_digit.items()},
        "seconds": round(seconds, 2),
        "steps": steps,
        "stopped": stopped,
        "trained_layers": trained,
        "replay_images": replay_images,
        "replay_allographs": replay_allographs,
        "examples_accuracy_before": acc_before,
        "examples_accuracy_after": acc_after,
        "seed": seed,
    }
    meta["metrics"] = {}
    return meta
