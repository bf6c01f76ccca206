"""Our own networks: ``digitnet`` (the default) and ``fast``.

A VGG-style stack of 3x3 convolutions with batch norm, each stage ending in a 2x2 max-pool
(28 -> 14 -> 7 -> 3), then a linear classifier over the 3x3 map. Why this shape: on CPUs the cost
is dominated by the convolutions at 28x28, so the first stage is kept to a single narrow
convolution and the width goes where the maps are small; batch norm lets a one-cycle schedule use
large learning rates, which is what makes few-epoch training reach high accuracy.
Throughput was measured on 2 CPU cores (benchmarks/, docs/performance.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor, nn

from ._registry import register_model


@dataclass
class DigitNetConfig:
    widths: list[int] = field(default_factory=lambda: [32, 64, 128])
    depths: list[int] = field(default_factory=lambda: [1, 2, 1])  # 3x3 convs per stage
    dropout: float = 0.1
    num_classes: int = 10


def _conv_bn_relu(cin: int, cout: int) -> list[nn.Module]:
    return [
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    ]


class DigitNet(nn.Module):
    def __init__(self, config: DigitNetConfig) -> None:
        super().__init__()
        if len(config.widths) != 3 or len(config.depths) != 3 or min(config.depths) < 1:
            raise TypeError("widths and depths must list 3 stages, each with at least one conv")
        self.config = config
        layers: list[nn.Module] = []
        cin = 1
        for w, d in zip(config.widths, config.depths, strict=True):
            for _ in range(d):
                layers += _conv_bn_relu(cin, w)
                cin = w
            layers.append(nn.MaxPool2d(2))  # 28 -> 14 -> 7 -> 3
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Dropout(config.dropout), nn.Linear(cin * 9, config.num_classes)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


@register_model
def digitnet(**args) -> DigitNet:
    """Our default: 3x3 conv-BN-ReLU stages 32/64x2/128, max-pools, linear head."""
    return DigitNet(DigitNetConfig(**args))


@register_model
def fast(**args) -> DigitNet:
    """Our speed model: conv-BN-ReLU stages 16/32/64, one conv each, for 99% in seconds."""
    args.setdefault("widths", [16, 32, 64])
    args.setdefault("depths", [1, 1, 1])
    args.setdefault("dropout", 0.0)
    return DigitNet(DigitNetConfig(**args))
