"""Every registered model: builds, maps (N,1,28,28) to (N,10) logits, learns, reports its size."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from digitnet.errors import UsageError
from digitnet.models import create_model, list_models, model_info


@pytest.mark.parametrize("name", list_models())
def test_forward_shape_and_config(name):
    model = create_model(name)
    assert model.model_name == name
    assert dataclasses.is_dataclass(model.config)
    model.eval()
    out = model(torch.randn(3, 1, 28, 28))
    assert out.shape == (3, 10)
    # The config alone rebuilds the same architecture (what checkpoints rely on).
    again = create_model(name, **dataclasses.asdict(model.config))
    assert [p.shape for p in again.parameters()] == [p.shape for p in model.parameters()]


@pytest.mark.parametrize("name", list_models())
def test_a_few_steps_reduce_the_loss(name):
    torch.manual_seed(0)
    model = create_model(name)
    x = torch.randn(32, 1, 28, 28)
    y = torch.arange(32) % 10
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(15):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_paper_network_matches_the_paper():
    m = create_model("paper")
    convs = [mod for mod in m.modules() if isinstance(mod, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.padding) for c in convs] == [
        (1, 64, (5, 5), (0, 0)),
        (64, 64, (3, 3), (0, 0)),
        (64, 20, (3, 3), (1, 1)),
    ]
    assert m.fc.in_features == 2000 and m.fc.out_features == 10


def test_course_network_is_as_listed_without_activations():
    m = create_model("course")
    assert not any(
        isinstance(mod, (torch.nn.ReLU, torch.nn.Sigmoid, torch.nn.Tanh)) for mod in m.modules()
    )
    lin = [mod for mod in m.modules() if isinstance(mod, torch.nn.Linear)]
    assert [(fc.in_features, fc.out_features) for fc in lin] == [(3136, 128), (128, 10)]


def test_model_info_counts_parameters_and_flops():
    info = model_info("paper")
    assert info["params"] == sum(p.numel() for p in create_model("paper").parameters())
    # c1 24*24*64*25 + c3 10*10*64*64*9 + c4 10*10*20*64*9 + fc 2000*10 multiply-adds, x2.
    macs = 24 * 24 * 64 * 25 + 10 * 10 * 64 * 64 * 9 + 10 * 10 * 20 * 64 * 9 + 2000 * 10
    assert info["mflops"] == pytest.approx(2 * macs / 1e6, rel=1e-3)


def test_unknown_model_and_bad_args_are_usage_errors():
    with pytest.raises(UsageError, match="unknown model 'nope'"):
        create_model("nope")
    with pytest.raises(UsageError, match="bad architecture arguments"):
        create_model("paper", width=3)
