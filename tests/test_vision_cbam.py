"""attnlib.vision.cbam: CBAM and its channel and spatial gates."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import randn

from attnlib import record_attention
from attnlib.vision.cbam import CBAM, ChannelGate, SpatialGate

# Tiny tensors: one thread is as fast, and immune to other jobs on the cores.
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("shape", [(2, 32, 7, 7), (3, 16, 5, 9), (1, 48, 1, 1)])
def test_cbam_is_channel_gate_then_spatial_gate_by_the_formulas(shape):
    torch.manual_seed(0)
    B, C, H, W = shape
    cbam = CBAM(C, reduction=8)
    x = randn(*shape)
    with record_attention(cbam) as maps:
        y = cbam(x)
    mlp = cbam.channel.mlp
    mc = torch.sigmoid(mlp(x.mean((2, 3))) + mlp(x.amax((2, 3))))[:, :, None, None]
    f1 = mc * x
    desc = torch.cat([f1.mean(1, keepdim=True), f1.amax(1, keepdim=True)], 1)
    ms = torch.sigmoid(F.conv2d(desc, cbam.spatial.conv.weight, cbam.spatial.conv.bias, padding=3))
    assert torch.allclose(y, ms * f1, atol=1e-6)
    assert maps.names() == ["channel", "spatial"]
    assert maps["channel"][0].shape == (B, C, 1, 1) and maps["spatial"][0].shape == (B, 1, H, W)
    assert torch.allclose(maps["channel"][0], mc, atol=1e-6) and torch.allclose(maps["spatial"][0], ms, atol=1e-6)


def test_cbam_branches_work_alone():
    torch.manual_seed(1)
    x = randn(2, 32, 6, 5)
    gate = ChannelGate(32)
    spatial = SpatialGate(kernel_size=3)
    with record_attention(gate) as cmaps:
        yc = gate(x)
    with record_attention(spatial) as smaps:
        ys = spatial(torch.randn(2, 7, 6, 5))  # any channel count
    assert yc.shape == x.shape and cmaps[""][0].shape == (2, 32, 1, 1)
    assert ys.shape == (2, 7, 6, 5) and smaps[""][0].shape == (2, 1, 6, 5)
    with pytest.raises(ValueError, match="positive odd integer"):
        SpatialGate(kernel_size=6)
    with pytest.raises(ValueError, match="divisible by reduction.*channels=20, reduction=16"):
        ChannelGate(20)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: CBAM(20, reduction=0), r"channels and reduction must be positive; got channels=20, reduction=0"),
        (lambda: CBAM(20), r"the hidden layer has C / r units; got channels=20, reduction=16 \(try reduction=10\)"),
    ],
)
def test_reduction_modules_name_the_bad_size_and_suggest_a_divisor(make, message):
    with pytest.raises(ValueError, match=message):
        make()
