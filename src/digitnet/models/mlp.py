"""A fully connected back-propagation network: the "BP network" of the seed paper's comparison."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor, nn

from ._registry import register_model


@dataclass
class MLPConfig:
    hidden: list[int] = field(default_factory=lambda: [512, 256])
    activation: str = "relu"  # "relu" or "sigmoid" (the classic BP network's squashing)
    dropout: float = 0.2
    num_classes: int = 10


class MLP(nn.Module):
    def __init__(self, config: MLPConfig) -> None:
        super().__init__()
        if config.activation not in ("relu", "sigmoid"):
            raise TypeError(f"activation must be 'relu' or 'sigmoid', not {config.activation!r}")
        self.config = config
        layers: list[nn.Module] = [nn.Flatten()]
        width = 28 * 28
        for h in config.hidden:
            layers += [
                nn.Linear(width, h),
                nn.ReLU(inplace=True) if config.activation == "relu" else nn.Sigmoid(),
            ]
            if config.dropout > 0:
                layers.append(nn.Dropout(config.dropout))
            width = h
        layers.append(nn.Linear(width, config.num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


@register_model
def mlp(**args) -> MLP:
    """BP network: fully connected 784-512-256-10, ReLU, dropout 0.2."""
    return MLP(MLPConfig(**args))
