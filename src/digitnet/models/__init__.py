"""The model zoo. Importing this package registers every family.

| name       | file          | what                                                        |
|------------|---------------|-------------------------------------------------------------|
| digitnet   | digitnet.py   | our default: best accuracy for the compute                  |
| fast       | digitnet.py   | our small network for time-to-99%                           |
| paper      | paper.py      | the 2024 seed paper's CNN                                   |
| course     | course.py     | the course report's CNN (no activations, as listed)         |
| lenet5     | lenet.py      | LeNet-5 (LeCun et al. 1998) for 28x28 input                 |
| resnet     | resnet.py     | a small residual network                                    |
| mlp        | mlp.py        | a fully connected back-propagation ("BP") network           |
| pytorch_example, keras_example | peers.py | the official PyTorch / Keras MNIST example networks |
"""

from . import course, digitnet, lenet, mlp, paper, peers, resnet  # noqa: F401  (registration)
from ._registry import (
    count_macs,
    create_model,
    list_models,
    model_info,
    model_summary,
    register_model,
)

__all__ = [
    "count_macs",
    "create_model",
    "list_models",
    "model_info",
    "model_summary",
    "register_model",
]
