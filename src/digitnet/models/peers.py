"""The networks of the two most copied MNIST examples, re-implemented for side-by-side benchmarks.

- ``pytorch_example``: pytorch/examples ``mnist/main.py`` ``Net``: conv 3x3/32, conv 3x3/64,
  max-pool, dropout 0.25, fc 9216-128, dropout 0.5, fc 128-10 (its log_softmax + NLL loss is
  our logits + cross-entropy, the same thing).
- ``keras_example``: keras.io "Simple MNIST convnet": conv 3x3/32, max-pool, conv 3x3/64,
  max-pool, flatten 1600, dropout 0.5, dense 10.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from ._registry import register_model


@dataclass
class PyTorchExampleConfig:
    num_classes: int = 10


class PyTorchExampleNet(nn.Module):
    def __init__(self, config: PyTorchExampleConfig) -> None:
        super().__init__()
        self.config = config
        self.net = nn.Sequential(
            nn.Conv2d(1, 32, 3),
            nn.ReLU(inplace=True),
            nn.Conv2d(32, 64, 3),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Dropout(0.25),
            nn.Flatten(),
            nn.Linear(9216, 128),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Linear(128, config.num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


@dataclass
class KerasExampleConfig:
    num_classes: int = 10


class KerasExampleNet(nn.Module):
    def __init__(self, config: KerasExampleConfig) -> None:
        super().__init__()
        self.config = config
        self.net = nn.Sequential(
            nn.Conv2d(1, 32, 3),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Dropout(0.5),
            nn.Linear(64 * 5 * 5, config.num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


@register_model
def pytorch_example(**args) -> PyTorchExampleNet:
    """Peer: the official PyTorch MNIST example network (conv32-conv64-pool-fc128)."""
    return PyTorchExampleNet(PyTorchExampleConfig(**args))


@register_model
def keras_example(**args) -> KerasExampleNet:
    """Peer: the Keras 'simple MNIST convnet' (conv32-pool-conv64-pool-dropout-dense)."""
    return KerasExampleNet(KerasExampleConfig(**args))
