"""A small residual network (He et al. 2016) for 28x28 digits.

A 3x3 stem, then three stages of basic blocks (two 3x3 convolutions with batch norm and an
identity or 1x1 projection shortcut) at 28, 14 and 7 pixels, global average pooling and a linear
classifier: the CIFAR-style ResNet layout, narrowed for MNIST.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch.nn.functional as F
from torch import Tensor, nn

from ._registry import register_model


@dataclass
class ResNetConfig:
    widths: list[int] = field(default_factory=lambda: [16, 32, 64])
    blocks: list[int] = field(default_factory=lambda: [2, 2, 2])
    num_classes: int = 10


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x), inplace=True)


class ResNet(nn.Module):
    def __init__(self, config: ResNetConfig) -> None:
        super().__init__()
        if len(config.widths) != len(config.blocks) or not config.widths:
            raise TypeError("widths and blocks must be non-empty lists of the same length")
        self.config = config
        w0 = config.widths[0]
        self.stem = nn.Sequential(
            nn.Conv2d(1, w0, 3, padding=1, bias=False), nn.BatchNorm2d(w0), nn.ReLU(inplace=True)
        )
        layers: list[nn.Module] = []
        cin = w0
        for i, (w, n) in enumerate(zip(config.widths, config.blocks, strict=True)):
            for j in range(n):
                layers.append(BasicBlock(cin, w, stride=2 if (i > 0 and j == 0) else 1))
                cin = w
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, config.num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.layers(self.stem(x))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


@register_model
def resnet(**args) -> ResNet:
    """Small ResNet: 3x3 stem, basic blocks at 16/32/64 channels (2 each), global pooling."""
    return ResNet(ResNetConfig(**args))
