"""attnlib.vision.squeeze_excite: Squeeze-and-Excitation."""

from __future__ import annotations

import pytest
import torch
from conftest import randn

from attnlib import record_attention
from attnlib.vision.squeeze_excite import SqueezeExcite

SHAPES = [(2, 32, 7, 7), (3, 48, 5, 9), (2, 16, 1, 1), (1, 64, 14, 3)]


# Tiny tensors: one thread is as fast, and immune to other jobs on the cores.
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_se_matches_the_formula_and_gates_lie_in_0_1(shape, dtype):
    torch.manual_seed(0)
    B, C, H, W = shape
    se = SqueezeExcite(C, reduction=8).to(dtype)
    x = randn(*shape, dtype=dtype)
    with record_attention(se) as maps:
        y = se(x)
    s = x.mean(dim=(2, 3))
    g = torch.sigmoid(torch.relu(s @ se.fc1.weight.T + se.fc1.bias) @ se.fc2.weight.T + se.fc2.bias)
    assert y.shape == x.shape and y.dtype == dtype
    assert torch.allclose(y, x * g[:, :, None, None], atol=1e-6)
    gates = maps[""][0]
    assert gates.shape == (B, C, 1, 1)
    assert torch.allclose(gates.flatten(1), g, atol=1e-6)
    assert (gates > 0).all() and (gates < 1).all()


def test_se_parameter_count_follows_the_reduction_ratio():
    for r in (1, 2, 4, 8, 16):
        se = SqueezeExcite(64, reduction=r)
        assert sum(p.numel() for p in se.parameters()) == 2 * 64 * (64 // r) + 64 // r + 64


def test_se_gradients_flow_to_input_and_every_parameter():
    torch.manual_seed(1)
    se = SqueezeExcite(32)
    x = randn(2, 32, 5, 5).requires_grad_()
    se(x).square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in se.parameters())


def test_se_float64_gradcheck():
    torch.manual_seed(2)
    se = SqueezeExcite(8, reduction=4).double()
    x = randn(2, 8, 3, 3, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(se, (x,))


def test_se_is_deterministic_under_a_seed():
    outs = []
    for _ in range(2):
        torch.manual_seed(3)
        outs.append(SqueezeExcite(32)(randn(2, 32, 4, 4)))
    assert torch.equal(outs[0], outs[1])


def test_se_bad_input_raises_clear_errors():
    se = SqueezeExcite(32)
    with pytest.raises(ValueError, match=r"x must have exactly 4 dimensions \(B, C, H, W\); got shape \(2, 32, 7\)"):
        se(torch.zeros(2, 32, 7))
    with pytest.raises(ValueError, match=r"x must have 32 channels, shape \(B, 32, H, W\); got shape \(2, 16, 7, 7\)"):
        se(torch.zeros(2, 16, 7, 7))
    indivisible = r"channels must be divisible by reduction.*channels=24, reduction=16 \(try reduction=12\)"
    with pytest.raises(ValueError, match=indivisible):
        SqueezeExcite(24)
    with pytest.raises(ValueError, match="must be positive"):
        SqueezeExcite(0)
