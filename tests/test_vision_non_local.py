"""attnlib.vision.non_local: the non-local block."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import randn

from attnlib import record_attention
from attnlib.vision.non_local import NonLocalBlock

# Tiny tensors: one thread is as fast, and immune to other jobs on the cores.
pytestmark = pytest.mark.usefixtures("one_thread")


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
