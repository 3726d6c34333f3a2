"""attnlib.vision.multiscale_attention: attention to scale."""

from __future__ import annotations

import pytest
import torch
from conftest import randn

from attnlib import record_attention
from attnlib.vision.multiscale_attention import MultiScaleAttention

# Tiny tensors: one thread is as fast, and immune to other jobs on the cores.
pytestmark = pytest.mark.usefixtures("one_thread")


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
