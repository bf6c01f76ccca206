"""LeNet-5 (LeCun, Bottou, Bengio, Haffner 1998), adapted to 28x28 input.

The 1998 network read 32x32 images; we pad the 28x28 input by 2 pixels in C1 instead, which gives
the same feature-map sizes (28 -> 14 -> 10 -> 5 -> 1). Kept from the paper: 6/16/120 feature maps,
5x5 kernels, subsampling by 2x2 averaging, scaled tanh (1.7159 tanh(2x/3)), F6 with 84 units.
Simplified, as every modern re-implementation does: C3 connects to all S2 maps (the paper used a
sparse table) and the Euclidean RBF output layer is a linear layer trained with cross-entropy.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ._registry import register_model


@dataclass
class LeNetConfig:
    c1: int = 6
    c3: int = 16
    c5: int = 120
    f6: int = 84
    num_classes: int = 10


class ScaledTanh(nn.Module):
    """LeCun's squashing function f(a) = 1.7159 tanh(2a/3) (1998, appendix A)."""

    def forward(self, x: Tensor) -> Tensor:
        return 1.7159 * torch.tanh(x * (2.0 / 3.0))


class LeNet5(nn.Module):
    def __init__(self, config: LeNetConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.features = nn.Sequential(
            nn.Conv2d(1, c.c1, 5, padding=2),
            ScaledTanh(),
            nn.AvgPool2d(2),  # C1, S2
            nn.Conv2d(c.c1, c.c3, 5),
            ScaledTanh(),
            nn.AvgPool2d(2),  # C3, S4
            nn.Conv2d(c.c3, c.c5, 5),
            ScaledTanh(),  # C5: 5x5 -> 1x1
        )
        self.classifier = nn.Sequential(
            nn.Linear(c.c5, c.f6), ScaledTanh(), nn.Linear(c.f6, c.num_classes)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x).flatten(1))


@register_model
def lenet5(**args) -> LeNet5:
    """LeNet-5 (LeCun et al. 1998): C1-S2-C3-S4-C5-F6, scaled tanh, average pooling."""
    return LeNet5(LeNetConfig(**args))
