"""Runs per hour: one run at a time vs K runs stacked (experiments/stacked.py), per network.

    python benchmarks/bench_stacked.py [--threads 1] [--k 2,4] [--steps 30] [--models paper,course]

For each network it times training steps (forward, backward, optimiser step) at the batch size
of the network's own recipe, one model at a time and K models stacked, and converts the step
rate into full-length runs per hour with that recipe's epochs on 24,345 training images
(evaluation excluded). Data are random tensors of MNIST's shape: the cost of a step does not
depend on the pixel values. Print the machine next to the figures when you publish them; on a
shared machine run it twice and quote the range.
"""

from __future__ import annotations

import argparse
import math
import os
import time

import torch
import torch.nn.functional as F

from digitnet.engine.config import resolve_config
from digitnet.experiments.plan import default_recipe
from digitnet.experiments.stacked import StackedModels, stackable
from digitnet.models import create_model

TRAIN_IMAGES = 24345


def _optimizer(cfg, params):
    if cfg.optimizer in ("adam", "adamw"):
        cls = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.AdamW
        return cls(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(
        params,
        lr=cfg.lr,
        momentum=cfg.momentum,
        nesterov=cfg.nesterov,
        weight_decay=cfg.weight_decay,
    )


def _rate(step, steps: int) -> float:
    for _ in range(3):  # warm-up
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return steps / (time.perf_counter() - t0)


def bench(name: str, ks: list[int], steps: int) -> list[str]:
    # course_relu: the course network with ReLUs and the default recipe (experiments/full.toml)
    model_args = {"activation": "relu"} if name == "course_relu" else {}
    arch = "course" if name == "course_relu" else name
    cfg = resolve_config(
        recipe="default" if name == "course_relu" else default_recipe(arch), model=arch
    )
    b = cfg.batch_size
    steps_per_run = cfg.epochs * math.ceil(TRAIN_IMAGES / b)
    lines = []

    torch.manual_seed(0)
    m = create_model(arch, **model_args)
    m.train()
    opt = _optimizer(cfg, m.parameters())
    x, y = torch.randn(b, 1, 28, 28), torch.randint(0, 10, (b,))

    def one():
        loss = F.cross_entropy(m(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    r1 = _rate(one, steps)
    base = 3600 * r1 / steps_per_run
    lines.append(f"{name:12s} {cfg.recipe:8s} batch {b:4d}  one at a time: {base:7.2f} runs/h")
    why = stackable(m)
    if why:
        lines.append(f"{'':12s} stacked: not possible ({why})")
        return lines
    for k in ks:
        st = StackedModels([create_model(arch, **model_args) for _ in range(k)])
        sopt = _optimizer(cfg, st.parameters())
        xs, ys = torch.randn(k, b, 1, 28, 28), torch.randint(0, 10, (k, b))

        def stacked(st=st, sopt=sopt, xs=xs, ys=ys):
            loss = st.loss(xs, ys).sum()
            sopt.zero_grad(set_to_none=True)
            loss.backward()
            sopt.step()

        rk = _rate(stacked, max(3, steps // k))
        runs = 3600 * rk * k / steps_per_run
        lines.append(f"{'':12s} stacked K={k}: {runs:7.2f} runs/h  ({runs / base:.2f}x)")
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--k", default="2,4", help="stack sizes, comma-separated")
    p.add_argument("--steps", type=int, default=30, help="timed steps per measurement")
    p.add_argument("--models", default="paper,course,course_relu,lenet5,mlp,digitnet,resnet")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    ks = [int(k) for k in a.k.split(",")]
    print(
        f"machine: {os.cpu_count()} CPU cores, torch {torch.__version__}, {a.threads} thread(s); "
        f"runs/h = full-length runs of each network's own recipe on {TRAIN_IMAGES:,} images, "
        "training steps only"
    )
    for name in a.models.split(","):
        for line in bench(name, ks, a.steps):
            print(line, flush=True)


if __name__ == "__main__":
    main()
