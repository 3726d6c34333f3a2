"""attnlib.vision: channel attention (SE, ECA, Selective Kernel)."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from attnlib import record_attention
from attnlib.vision.efficient_channel_attention import EfficientChannelAttention, eca_kernel_size
from attnlib.vision.squeeze_excite import SqueezeExcite
from attnlib.vision.selective_kernel import SelectiveKernel

SHAPES = [(2, 32, 7, 7), (3, 48, 5, 9), (2, 16, 1, 1), (1, 64, 14, 3)]


# Tiny tensors: one thread is as fast, and immune to other jobs on the cores.
pytestmark = pytest.mark.usefixtures("one_thread")


def randn(*shape: int, seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# ---------------------------------------------------------------- Squeeze-and-Excitation


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


# ---------------------------------------------------------------- ECA


def _official_kernel_size(channels: int, gamma: float = 2, b: float = 1) -> int:
    t = int(abs((math.log(channels, 2) + b) / gamma))
    return t if t % 2 else t + 1


@pytest.mark.parametrize(
    ("channels", "k"), [(8, 3), (32, 3), (64, 3), (127, 3), (128, 5), (256, 5), (2047, 5), (2048, 7)]
)
def test_eca_kernel_size_is_the_nearest_odd_of_the_log_rule(channels, k):
    assert eca_kernel_size(channels) == k
    assert EfficientChannelAttention(channels).kernel_size == k


def test_eca_kernel_size_agrees_with_the_int_then_bump_rule_everywhere():
    assert all(eca_kernel_size(c) == _official_kernel_size(c) for c in range(1, 5000))
    assert eca_kernel_size(512, gamma=1, b=0) == 9


@pytest.mark.parametrize("shape", SHAPES)
def test_eca_matches_a_loop_over_channels_and_gates_lie_in_0_1(shape):
    torch.manual_seed(4)
    B, C, H, W = shape
    eca = EfficientChannelAttention(C)
    k = eca.kernel_size
    w = eca.conv.weight.view(k)
    x = randn(*shape)
    with record_attention(eca) as maps:
        y = eca(x)
    s = x.mean(dim=(2, 3))  # (B, C)
    padded = F.pad(s, (k // 2, k // 2))
    pre = torch.stack([(padded[:, c : c + k] * w).sum(-1) for c in range(C)], dim=1)  # neighbours only
    g = torch.sigmoid(pre)
    assert torch.allclose(y, x * g[:, :, None, None], atol=1e-6)
    gates = maps.last("")
    assert gates.shape == (B, C, 1, 1) and (gates > 0).all() and (gates < 1).all()
    assert sum(p.numel() for p in eca.parameters()) == k


def test_eca_gradients_flow_and_bad_input_raises():
    torch.manual_seed(5)
    eca = EfficientChannelAttention(16)
    x = randn(2, 16, 3, 3).requires_grad_()
    eca(x).square().sum().backward()
    assert x.grad.abs().sum() > 0 and eca.conv.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match=r"exactly 4 dimensions \(B, C, H, W\); got shape \(16, 3, 3\)"):
        eca(torch.zeros(16, 3, 3))
    with pytest.raises(ValueError, match=r"x must have 16 channels"):
        eca(torch.zeros(1, 8, 3, 3))
    with pytest.raises(ValueError, match="positive odd integer.*got 4"):
        EfficientChannelAttention(16, kernel_size=4)


# ---------------------------------------------------------------- Selective Kernel


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
