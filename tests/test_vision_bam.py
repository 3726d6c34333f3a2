"""attnlib.vision.bam: the Bottleneck Attention Module."""

from __future__ import annotations

import pytest
import torch
from conftest import randn

from attnlib import record_attention
from attnlib.vision.bam import BAM

# Tiny tensors: one thread is as fast, and immune to other jobs on the cores.
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("shape", [(2, 32, 7, 7), (3, 64, 14, 3), (2, 16, 1, 1)])
def test_bam_is_residual_with_a_broadcast_3d_map(shape):
    torch.manual_seed(2)
    B, C, H, W = shape
    bam = BAM(C)
    x = randn(*shape).abs()
    with record_attention(bam) as maps:
        y = bam(x)
    m = maps[""][0]
    assert m.shape == (B, C, H, W) and (m > 0).all() and (m < 1).all()
    assert torch.allclose(y, x + x * m, atol=1e-6)
    # the map is sigmoid(M_c + M_s): channel part constant over positions, spatial part over channels
    logit = torch.logit(m.double())
    mc = logit - logit[:, :1]  # removes M_s; what is left varies only with the channel
    assert torch.allclose(mc, mc[:, :, :1, :1].expand_as(mc), atol=1e-4)
    assert (y >= x).all() and (y <= 2 * x).all()  # for non-negative features: amplify by 1..2


def test_bam_bad_input_and_dilation():
    bam = BAM(32, dilation=2)
    assert bam.spatial_branch[3].dilation == (2, 2)
    with pytest.raises(ValueError, match="divisible by reduction.*channels=24"):
        BAM(24)
    with pytest.raises(ValueError, match=r"x must have 32 channels, shape \(B, 32, H, W\); got shape \(2, 31, 4, 4\)"):
        bam(torch.zeros(2, 31, 4, 4))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: BAM(0), r"channels and reduction must be positive; got channels=0, reduction=16"),
        (lambda: BAM(32, dilation=0), r"dilation must be positive; got dilation=0"),
        (lambda: BAM(24), r"the branches have C / r channels; got channels=24, reduction=16 \(try reduction=12\)"),
    ],
)
def test_reduction_modules_name_the_bad_size_and_suggest_a_divisor(make, message):
    with pytest.raises(ValueError, match=message):
        make()
