"""Stacked training (experiments/stacked.py): K runs at once are K separate runs, same maths."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from digitnet.errors import UsageError
from digitnet.experiments.stacked import StackedModels, stackable
from digitnet.models import create_model

SEEDS = [0, 1, 2]
STEPS = 4
BATCH = 16


def _data(n: int = 96) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(123)
    return torch.randn(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g)


def _orders(n: int) -> list[torch.Tensor]:
    # each run its own data order, drawn from its seed (as separate runs would)
    return [torch.randperm(n, generator=torch.Generator().manual_seed(1000 + s)) for s in SEEDS]


def _make(name: str, seed: int):
    torch.manual_seed(seed)
    return create_model(name)


def _opt(name: str, params):
    if name == "adam":
        return torch.optim.Adam(params, lr=1e-3)
    return torch.optim.SGD(params, lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)


@pytest.mark.parametrize(
    "model, optimizer", [("paper", "adam"), ("course", "sgd"), ("lenet5", "sgd")]
)
def test_stacked_runs_equal_separate_runs(model, optimizer):
    torch.set_num_threads(1)
    x, y = _data()
    orders = _orders(len(y))

    separate_losses, separate_models = [], []
    for s, order in zip(SEEDS, orders, strict=True):
        m = _make(model, s)
        m.train()
        opt = _opt(optimizer, m.parameters())
        losses = []
        for step in range(STEPS):
            ix = order[step * BATCH : (step + 1) * BATCH]
            loss = F.cross_entropy(m(x[ix]), y[ix])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        separate_losses.append(losses)
        separate_models.append(m)

    models = [_make(model, s) for s in SEEDS]
    st = StackedModels(models)
    opt = _opt(optimizer, st.parameters())
    stacked_losses = []
    for step in range(STEPS):
        ix = torch.stack([o[step * BATCH : (step + 1) * BATCH] for o in orders])
        per = st.loss(x[ix], y[ix])
        opt.zero_grad(set_to_none=True)
        per.sum().backward()
        opt.step()
        stacked_losses.append(per.detach().tolist())

    for k in range(len(SEEDS)):
        for step in range(STEPS):
            assert stacked_losses[step][k] == pytest.approx(
                separate_losses[k][step], rel=1e-4, abs=1e-5
            )
    # The runs really differ from each other (else equality above would prove little).
    assert abs(separate_losses[0][-1] - separate_losses[1][-1]) > 1e-4
    # And the trained weights come back out as ordinary modules equal to the separate runs'.
    for a, b in zip(st.unstack(_make(model, 0)), separate_models, strict=True):
        for (na, pa), (_nb, pb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
            # atol: a tenth of one Adam step (lr 1e-3). Adam divides by sqrt(v), so a rounding
            # difference in a near-zero gradient moves a weight by up to ~1e-5..1e-4.
            assert torch.allclose(pa, pb, rtol=1e-4, atol=1e-4), na


def test_batchnorm_networks_are_refused():
    m = create_model("digitnet")
    assert stackable(m) is not None
    with pytest.raises(UsageError, match="BatchNorm"):
        StackedModels([m, create_model("digitnet")])
    assert stackable(create_model("paper")) is None
