"""attnlib.vision.selective_kernel: Selective Kernel convolution."""

from __future__ import annotations

import pytest
import torch
from conftest import randn

from attnlib import record_attention
from attnlib.vision.selective_kernel import SelectiveKernel

# Tiny tensors: one thread is as fast, and immune to other jobs on the cores.
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize(
    ("shape", "groups", "branches"), [((2, 32, 7, 7), 32, 2), ((3, 48, 5, 9), 16, 3), ((2, 8, 1, 1), 1, 2)]
)
def test_sk_output_is_the_branch_mixture_and_weights_sum_to_one(shape, groups, branches):
    torch.manual_seed(6)
    B, C, H, W = shape
    sk = SelectiveKernel(C, branches=branches, groups=groups)
    x = randn(*shape)
    with record_attention(sk) as maps:
        y = sk(x)
    a = maps[""][0]
    assert y.shape == x.shape
    assert a.shape == (B, branches, C, 1, 1)
    assert torch.allclose(a.sum(dim=1), torch.ones(B, C, 1, 1), atol=1e-6)
    u, a2 = sk.branch_weights(x)
    assert u.shape == (B, branches, C, H, W)
    assert torch.allclose(a, a2) and torch.allclose(y, (a * u).sum(1), atol=1e-6)
    # branch m has dilation m: a (2m + 1) x (2m + 1) receptive field
    assert [b[0].dilation for b in sk.branches] == [(m, m) for m in range(1, branches + 1)]


def test_sk_hidden_size_is_max_of_c_over_r_and_l():
    assert SelectiveKernel(64).hidden == 32
    assert SelectiveKernel(1024).hidden == 64
    assert SelectiveKernel(64, min_hidden=2, reduction=4).hidden == 16


def test_sk_selects_a_branch_when_its_score_dominates():
    torch.manual_seed(7)
    sk = SelectiveKernel(32).eval()
    with torch.no_grad():
        sk.select.weight.zero_()
        sk.select.bias.copy_(torch.cat([torch.full((32,), 20.0), torch.zeros(32)]))  # branch 0 wins
    x = randn(2, 32, 6, 6)
    u, a = sk.branch_weights(x)
    assert torch.allclose(sk(x), u[:, 0], atol=1e-6)
    assert (a[:, 0] > 0.999).all()


def test_sk_gradients_flow_and_bad_input_raises():
    torch.manual_seed(8)
    sk = SelectiveKernel(32)
    x = randn(2, 32, 5, 5).requires_grad_()
    sk(x).square().sum().backward()
    assert x.grad.abs().sum() > 0
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in sk.parameters())
    assert sk.select.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="divisible by groups.*channels=24, groups=32"):
        SelectiveKernel(24)
    with pytest.raises(ValueError, match=r"exactly 4 dimensions \(B, C, H, W\)"):
        sk(torch.zeros(2, 32, 5))
    with pytest.raises(ValueError, match="x must have 32 channels"):
        sk(torch.zeros(2, 64, 5, 5))
