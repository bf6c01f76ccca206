"""The training, model-selection and test sets of a run, read once and put on the device."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import DataError, UsageError
from .mnist import find_mnist_files, load_mnist, resolve_data_dir
from .tensors import DeviceDataset, input_spec

if TYPE_CHECKING:
    import torch

    from ..engine.config import TrainConfig

__all__ = ["DEFAULT_VAL_SPLIT", "VAL_SPLIT_SEED", "Datasets", "load_datasets"]

# The held-out split is drawn with a fixed seed (independent of the run's) so that every run
# and every model selects on the same images.
VAL_SPLIT_SEED = 20240


@dataclass
class Datasets:
    """Device-resident splits; ``val`` is None without ``--val-split``."""

    train: DeviceDataset
    val: DeviceDataset | None
    test: DeviceDataset
    description: dict[str, Any]  # stored in checkpoint metadata (folder, counts, settings)


# Images the default recipe holds out of training to fit its confidence calibration (the
# temperature; never the test set). Where the training set is small (``limit_train``, a small
# MNIST folder) it holds out a tenth of it instead: DEFAULT_VAL_SPLIT applies only where it
# leaves at least nine tenths for training.
DEFAULT_VAL_SPLIT = 1000


def load_datasets(cfg: TrainConfig, device: torch.device) -> Datasets:
    """Read MNIST once, apply ``limit_train`` and ``val_split``, put everything on ``device``.

    Refuses (one line naming the file) a training or test file that holds no images.
    """
    data_dir = resolve_data_dir(cfg.data_dir)
    xtr, ytr = load_mnist(data_dir, "train")
    xte, yte = load_mnist(data_dir, "test")
    for split, n, what in (
        ("train", len(ytr), "cannot train on 0 images"),
        ("test", len(yte), "a 0-image test set cannot measure accuracy"),
    ):
        if n == 0:
            raise DataError(f"{find_mnist_files(data_dir, split)[0]}: holds no images; {what}")
    n_total = len(ytr)
    if cfg.limit_train is not None:
        xtr, ytr = xtr[: cfg.limit_train], ytr[: cfg.limit_train]
    xval = yval = None
    n_val = cfg.val_split
    if cfg.recipe == "default" and n_val == DEFAULT_VAL_SPLIT and 10 * n_val > len(ytr):
        n_val = len(ytr) // 10  # the recipe's own hold-out on a small training set
    if n_val:
        if n_val >= len(ytr):
            raise UsageError(
                f"--val-split {cfg.val_split} leaves no training images (only {len(ytr)})"
            )
        order = np.random.default_rng(VAL_SPLIT_SEED).permutation(len(ytr))
        vi, ti = np.sort(order[:n_val]), np.sort(order[n_val:])
        xval, yval, xtr, ytr = xtr[vi], ytr[vi], xtr[ti], ytr[ti]
    n_mnist, n_allo = len(ytr), 0
    if cfg.augment.enabled and cfg.augment.allographs > 0:
        from .allographs import training_pool  # synthetic writer styles (issue 12)

        n_allo = round(cfg.augment.allographs * n_mnist)
        xa, ya = training_pool(n_allo, seed=cfg.seed + 7919)
        xtr, ytr = np.concatenate([xtr, xa]), np.concatenate([ytr, ya.astype(ytr.dtype)])
    spec = input_spec(cfg.input)
    desc = {
        "data_dir": str(data_dir),
        "train_file_items": int(n_total),
        "train_images": n_mnist,
        "allograph_images": n_allo,
        "val_images": int(0 if yval is None else len(yval)),
        "test_images": len(yte),
        "limit_train": cfg.limit_train,
        "val_split": cfg.val_split,
    }
    return Datasets(
        train=DeviceDataset.from_numpy(xtr, ytr, spec, device),
        val=None
        if xval is None or yval is None
        else DeviceDataset.from_numpy(xval, yval, spec, device),
        test=DeviceDataset.from_numpy(xte, yte, spec, device),
        description=desc,
    )
