"""The course report's CNN, exactly as its listing has it.

conv 3x3 16 ch (padding 1, 28x28) -> max-pool 2x2 (14x14) -> flatten 3136 -> fc 128 -> fc 10.

The listing has no activation functions, so the whole network is linear in its input apart from
the max-pool. Together with its recipe (SGD lr 1e-4, raw 0..255 pixels) that is why it plateaus
around 90-92%: a nearly linear classifier on MNIST cannot do much better. ``activation="relu"``
gives the same layers with ReLUs, to show the difference.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from ._registry import register_model


@dataclass
class CourseConfig:
    channels: int = 16
    hidden: int = 128
    activation: str = "none"  # "none" as in the report, or "relu"
    num_classes: int = 10


class CourseNet(nn.Module):
    def __init__(self, config: CourseConfig) -> None:
        super().__init__()
        if config.activation not in ("none", "relu"):
            raise TypeError(f"activation must be 'none' or 'relu', not {config.activation!r}")
        self.config = config
        act = (lambda: nn.ReLU(inplace=True)) if config.activation == "relu" else nn.Identity
        self.conv = nn.Sequential(
            nn.Conv2d(1, config.channels, 3, padding=1), act(), nn.MaxPool2d(2)
        )
        self.fc = nn.Sequential(
            nn.Linear(config.channels * 14 * 14, config.hidden),
            act(),
            nn.Linear(config.hidden, config.num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.conv(x).flatten(1))


@register_model
def course(**args) -> CourseNet:
    """Course report CNN: conv3x3/16, pool, fc 3136-128-10, no activations (as listed)."""
    return CourseNet(CourseConfig(**args))
