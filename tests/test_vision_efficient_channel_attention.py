"""attnlib.vision.efficient_channel_attention: ECA."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from conftest import randn

from attnlib import record_attention
from attnlib.vision.efficient_channel_attention import EfficientChannelAttention, eca_kernel_size

SHAPES = [(2, 32, 7, 7), (3, 48, 5, 9), (2, 16, 1, 1), (1, 64, 14, 3)]


# Tiny tensors: one thread is as fast, and immune to other jobs on the cores.
pytestmark = pytest.mark.usefixtures("one_thread")


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
