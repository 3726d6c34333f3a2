"""attnlib.vision: mixed and spatial attention (CBAM, BAM, residual attention, non-local,
multi-scale)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from attnlib import record_attention
from attnlib.vision.bam import BAM
from attnlib.vision.cbam import CBAM, ChannelGate, SpatialGate
from attnlib.vision.multiscale_attention import MultiScaleAttention
from attnlib.vision.non_local import NonLocalBlock
from attnlib.vision.residual_attention import ResidualAttention


# Tiny tensors: one thread is as fast, and immune to other jobs on the cores.
pytestmark = pytest.mark.usefixtures("one_thread")


def randn(*shape: int, seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# ---------------------------------------------------------------- CBAM


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


# ---------------------------------------------------------------- BAM


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


# ---------------------------------------------------------------- Residual attention


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


# ---------------------------------------------------------------- Non-local


@pytest.mark.parametrize("shape", [(2, 32, 7, 7), (3, 5, 4, 9), (2, 1, 1, 1)])
def test_nonlocal_starts_as_the_identity_and_emits_row_stochastic_attention(shape):
    torch.manual_seed(7)
    B, C, H, W = shape
    block = NonLocalBlock(C)
    x = randn(*shape)
    with record_attention(block) as maps:
        y = block(x)
    assert torch.equal(y, x)
    f = maps[""][0]
    assert f.shape == (B, H * W, H * W)
    assert torch.allclose(f.sum(-1), torch.ones(B, H * W), atol=1e-5)


@pytest.mark.parametrize("mode", ["embedded_gaussian", "dot_product"])
def test_nonlocal_matches_attention_written_out(mode):
    torch.manual_seed(8)
    block = NonLocalBlock(16, mode=mode, zero_init=False)
    x = randn(2, 16, 5, 6)
    theta, phi, g = (m(x).flatten(2).transpose(1, 2) for m in (block.theta, block.phi, block.g))  # (B, N, C')
    scores = theta @ phi.transpose(1, 2)
    f = torch.softmax(scores, -1) if mode == "embedded_gaussian" else scores / 30
    y = (f @ g).transpose(1, 2).reshape(2, 8, 5, 6)
    assert torch.allclose(block(x), x + block.w_z(y), atol=1e-5)
    assert torch.allclose(block.attention(x), f, atol=1e-6)
    if mode == "embedded_gaussian":  # = torch's fused attention with scale 1
        fused = F.scaled_dot_product_attention(theta, phi, g, scale=1.0)
        assert torch.allclose(fused, f @ g, atol=1e-5), f"{(fused - f @ g).abs().max()}"


def test_nonlocal_learns_from_zero_init_and_rejects_bad_input():
    torch.manual_seed(9)
    block = NonLocalBlock(8)
    opt = torch.optim.SGD(block.parameters(), lr=0.1)
    x = randn(2, 8, 4, 4)
    for _ in range(2):  # step 1 moves W_z off zero, step 2 reaches theta, phi, g
        opt.zero_grad()
        (block(x) - 1).square().mean().backward()
        opt.step()
    assert block.w_z.weight.abs().sum() > 0 and block.theta.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="mode must be one of"):
        NonLocalBlock(8, mode="gaussian_kernel")
    with pytest.raises(ValueError, match=r"x must have 8 channels"):
        block(torch.zeros(1, 4, 4, 4))


# ---------------------------------------------------------------- Multi-scale


@pytest.mark.parametrize(
    ("shape", "scales"),
    [((2, 16, 7, 7), (1.0, 0.75, 0.5)), ((3, 8, 13, 5), (1.0, 0.5, 0.25)), ((2, 4, 1, 1), (1.0, 0.5))],
)
def test_multiscale_fuses_scales_with_a_per_pixel_softmax(shape, scales):
    torch.manual_seed(10)
    B, C, H, W = shape
    module = MultiScaleAttention(C, scales=scales).eval()
    x = randn(*shape)
    with record_attention(module) as maps:
        y = module(x)
    w = maps[""][0]
    assert w.shape == (B, len(scales), H, W)
    assert torch.allclose(w.sum(1), torch.ones(B, H, W), atol=1e-6)
    f = module.scale_features(x)
    assert f.shape == (B, len(scales), C, H, W)
    assert torch.allclose(f[:, 0], module.shared(x))  # scale 1 is the shared network on x itself
    assert torch.allclose(y, x + (w[:, :, None] * f).sum(1), atol=1e-6)


def test_multiscale_coarse_scales_are_smooth_and_bad_input_raises():
    torch.manual_seed(11)
    module = MultiScaleAttention(4, scales=(1.0, 0.25)).eval()
    x = randn(1, 4, 16, 16)
    f = module.scale_features(x)
    tv = lambda t: (t[..., 1:, :] - t[..., :-1, :]).abs().mean()  # noqa: E731
    assert tv(f[:, 1]) < 0.5 * tv(f[:, 0])  # the quarter-scale branch varies slowly
    with pytest.raises(ValueError, match=r"scales must be a non-empty sequence of factors in \(0, 1\]"):
        MultiScaleAttention(4, scales=(1.0, 2.0))
    with pytest.raises(ValueError, match=r"exactly 4 dimensions"):
        module(torch.zeros(4, 16, 16))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: BAM(0), r"channels and reduction must be positive; got channels=0, reduction=16"),
        (lambda: BAM(32, dilation=0), r"dilation must be positive; got dilation=0"),
        (lambda: BAM(24), r"the branches have C / r channels; got channels=24, reduction=16 \(try reduction=12\)"),
        (lambda: CBAM(20, reduction=0), r"channels and reduction must be positive; got channels=20, reduction=0"),
        (lambda: CBAM(20), r"the hidden layer has C / r units; got channels=20, reduction=16 \(try reduction=10\)"),
    ],
)
def test_reduction_modules_name_the_bad_size_and_suggest_a_divisor(make, message):
    with pytest.raises(ValueError, match=message):
        make()
