"""The seed paper's CNN (2024), exactly as its text describes it.

Input 1x28x28 -> c1 conv 5x5, 64 ch (24x24) -> s2 max-pool 2x2 (12x12) -> c3 conv 3x3, 64 ch
(10x10) -> c4 conv 3x3 padding 1, 20 ch (10x10) -> flatten 2000 -> fully connected -> 10.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from ._registry import register_model


@dataclass
class PaperConfig:
    c1: int = 64
    c3: int = 64
    c4: int = 20
    num_classes: int = 10


class PaperNet(nn.Module):
    """The paper's network.

    Assumption: the paper names no activation; we put a ReLU after each convolution (without one
    the four layers collapse into a linear model, which cannot reach the reported 99.31%).
    """

    def __init__(self, config: PaperConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.features = nn.Sequential(
            nn.Conv2d(1, c.c1, 5),  # c1: 28 -> 24
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),  # s2: 24 -> 12
            nn.Conv2d(c.c1, c.c3, 3),  # c3: 12 -> 10
            nn.ReLU(inplace=True),
            nn.Conv2d(c.c3, c.c4, 3, padding=1),  # c4: 10 -> 10
            nn.ReLU(inplace=True),
        )
        self.fc = nn.Linear(c.c4 * 10 * 10, c.num_classes)  # 20 * 10 * 10 = 2000

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.features(x).flatten(1))


@register_model
def paper(**args) -> PaperNet:
    """Seed paper CNN: conv5x5/64, pool, conv3x3/64, conv3x3/20, fc 2000-10 (ReLU assumed)."""
    return PaperNet(PaperConfig(**args))
