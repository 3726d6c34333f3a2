"""attnlib.vision.residual_attention: the attention module of the Residual Attention Network."""

from __future__ import annotations

import pytest
import torch
from conftest import randn

from attnlib import record_attention
from attnlib.vision.residual_attention import ResidualAttention

# Tiny tensors: one thread is as fast, and immune to other jobs on the cores.
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize(
    ("shape", "depth"), [((2, 16, 7, 7), 1), ((2, 8, 13, 10), 2), ((2, 8, 16, 16), 3), ((2, 4, 1, 1), 2)]
)
def test_residual_attention_is_one_plus_mask_times_trunk(shape, depth):
    torch.manual_seed(3)
    B, C, H, W = shape
    module = ResidualAttention(C, p=0, depth=depth).eval()  # p = 0: output is (1 + M) T itself
    x = randn(*shape)
    with record_attention(module) as maps:
        y = module(x)
    m = maps[""][0]
    assert y.shape == x.shape and m.shape == (B, C, H, W)
    assert (m > 0).all() and (m < 1).all()
    t = module.trunk(x)
    assert torch.allclose(m, module.mask(x)) and torch.allclose(y, (1 + m) * t, atol=1e-6)
    naive = ResidualAttention(C, p=0, depth=depth, residual_learning=False).eval()
    naive.load_state_dict(module.state_dict())
    assert torch.allclose(naive(x), m * t, atol=1e-6)


def test_residual_attention_stacks_shrink_features_only_without_residual_learning():
    torch.manual_seed(4)
    x = randn(4, 16, 8, 8)

    def stack(residual_learning: bool) -> torch.nn.Module:
        torch.manual_seed(5)
        return torch.nn.Sequential(
            *[ResidualAttention(16, p=0, t=0, residual_learning=residual_learning) for _ in range(6)]
        ).eval()

    with torch.no_grad():
        naive, arl = stack(False)(x), stack(True)(x)
    assert naive.norm() < 0.1 * x.norm()  # six masks in (0, 1) multiply the features down
    assert arl.norm() > x.norm()  # (1 + M) can only enhance


def test_residual_attention_gradients_and_bad_input():
    torch.manual_seed(6)
    module = ResidualAttention(16)
    x = randn(2, 16, 7, 7).requires_grad_()
    module(x).square().sum().backward()
    assert x.grad.abs().sum() > 0
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in module.parameters())
    with pytest.raises(ValueError, match="depth >= 1"):
        ResidualAttention(16, depth=0)
    with pytest.raises(ValueError, match=r"exactly 4 dimensions \(B, C, H, W\); got shape \(16, 7, 7\)"):
        module(torch.zeros(16, 7, 7))
