"""Training configuration: one dataclass, named recipes, and the override flow.

The flow is: the dataclass defaults (commented below) -> a named recipe -> an optional config
file (JSON or TOML) -> explicit overrides (CLI flags). ``resolve_config`` applies it and the
result is written next to the run's outputs (``config.json``), so a run can be repeated exactly.

Where things live: the dataclasses and their defaults in ``settings.py``, the named recipes in
``recipes.py``, the checks of config files and of ranges in ``validation.py``; this module holds
the flow and re-exports all of them, so ``from digitnet.engine.config import ...`` keeps working.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .recipes import RECIPES, list_recipes
from .settings import AugmentConfig, TrainConfig, _augment_from
from .validation import MAX_CONFIG_BYTES as MAX_CONFIG_BYTES
from .validation import MAX_SEED as MAX_SEED
from .validation import load_config_file, validate

__all__ = ["RECIPES", "TrainConfig", "list_recipes", "load_config_file", "resolve_config"]


def resolve_config(
    recipe: str | None = None, config_file: str | Path | None = None, **overrides: Any
) -> TrainConfig:
    """Dataclass defaults -> recipe -> config file -> overrides (``None`` values are ignored).

    A recipe names its model; an explicit ``model`` override replaces it (and then the recipe's
    model-specific ``model_args`` are dropped).
    """
    recipe = recipe or "default"
    if recipe not in RECIPES:
        raise UsageError(f"unknown recipe {recipe!r}; choose from: {', '.join(RECIPES)}")
    base = {
        k: (dataclasses.replace(v) if isinstance(v, AugmentConfig) else v)
        for k, v in RECIPES[recipe].items()
    }
    base["recipe"] = recipe
    layers = [base]
    if config_file is not None:
        layers.append(load_config_file(config_file))
    layers.append({k: v for k, v in overrides.items() if v is not None})
    merged: dict[str, Any] = {}
    for layer in layers:
        layer = dict(layer)
        aug = layer.pop("augment", None)
        merged.update(layer)
        if aug is not None:
            if isinstance(aug, AugmentConfig):
                merged["augment"] = aug
            elif isinstance(aug, bool):
                cur = merged.get("augment") or AugmentConfig()
                default_aug = RECIPES["default"]["augment"]
                merged["augment"] = dataclasses.replace(
                    cur if cur.enabled else default_aug, enabled=aug
                )
            else:
                cur = merged.get("augment") or AugmentConfig()
                merged["augment"] = dataclasses.replace(
                    cur, **_augment_from({**dataclasses.asdict(cur), **aug}).__dict__
                )
    if (
        "model" in overrides
        and overrides["model"] is not None
        and overrides["model"] != base.get("model")
    ):
        merged.setdefault("model_args", {})
    cfg = TrainConfig.from_dict(merged)
    validate(cfg)
    return cfg
