"""attnlib.transformer.positional: sinusoidal table by hand, RoPE's relative property, learned shapes."""

from __future__ import annotations

import math

import pytest
import torch

from attnlib.transformer.positional import (
    LearnedPositionalEncoding,
    RotaryEmbedding,
    SinusoidalPositionalEncoding,
    apply_rotary,
    sinusoidal_encoding,
)


def test_sinusoidal_hand_values():
    pe = sinusoidal_encoding(3, 4)  # frequencies 1 and 1/100
    expected = torch.tensor(
        [
            [0.0, 1.0, 0.0, 1.0],
            [math.sin(1), math.cos(1), math.sin(0.01), math.cos(0.01)],
            [math.sin(2), math.cos(2), math.sin(0.02), math.cos(0.02)],
        ]
    )
    assert pe.shape == (3, 4) and pe.dtype == torch.float32
    assert torch.allclose(pe, expected, atol=1e-7), (pe - expected).abs().max()


@pytest.mark.parametrize("length,dim,base", [(50, 16, 10000.0), (7, 6, 100.0), (1, 2, 10000.0)])
def test_sinusoidal_formula(length, dim, base):
    pe = sinusoidal_encoding(length, dim, base)
    pos, i = 5 % length, dim // 2 - 1
    angle = pos / base ** (2 * i / dim)
    assert abs(pe[pos, 2 * i].item() - math.sin(angle)) < 1e-6
    assert abs(pe[pos, 2 * i + 1].item() - math.cos(angle)) < 1e-6
    assert torch.allclose(pe[:, 0::2] ** 2 + pe[:, 1::2] ** 2, torch.ones(length, dim // 2), atol=1e-6)


@pytest.mark.parametrize("dim", [0, 5, -2])
def test_sinusoidal_odd_dim_raises(dim):
    with pytest.raises(ValueError, match=f"dim must be a positive even number .*got {dim}"):
        sinusoidal_encoding(4, dim)


@pytest.mark.parametrize("offset", [0, 3])
def test_sinusoidal_module_adds_table_with_offset(offset):
    module = SinusoidalPositionalEncoding(8, max_len=20)
    x = torch.randn(2, 5, 8)
    assert torch.allclose(module(x, offset=offset), x + sinusoidal_encoding(20, 8)[offset : offset + 5])
    with pytest.raises(ValueError, match=r"positions offset..offset\+T-1 = 18..22 must lie below max_len = 20"):
        module(x, offset=18)
    with pytest.raises(ValueError, match=r"x must have D = 8 features, shape \(B, T, 8\); got \(2, 5, 6\)"):
        module(torch.randn(2, 5, 6))


def test_learned_shapes_offset_and_gradient():
    module = LearnedPositionalEncoding(6, max_len=10)
    x = torch.zeros(3, 4, 6)
    out = module(x, offset=2)
    assert out.shape == (3, 4, 6)
    assert torch.equal(out[0], module.embedding.weight[2:6])
    out.sum().backward()
    grad = module.embedding.weight.grad
    assert grad[2:6].abs().sum() > 0 and grad[:2].abs().sum() == 0 and grad[6:].abs().sum() == 0
    with pytest.raises(ValueError, match="must lie below max_len = 10"):
        module(torch.zeros(1, 11, 6))


@pytest.mark.parametrize("head_dim", [2, 8, 32])
def test_rope_matches_complex_multiplication(head_dim):
    gen = torch.Generator().manual_seed(head_dim)
    rope = RotaryEmbedding(head_dim)
    x = torch.randn(2, 3, 5, head_dim, generator=gen, dtype=torch.float64)
    offset = 4
    as_complex = torch.view_as_complex(x.reshape(2, 3, 5, head_dim // 2, 2).contiguous())  # pairs (2i, 2i+1)
    theta = 10000.0 ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)  # (d/2,)
    position = torch.arange(offset, offset + 5, dtype=torch.float64)[:, None]  # (T, 1)
    expected = torch.view_as_real(as_complex * torch.polar(torch.ones_like(position * theta), position * theta))
    got = rope(x.float(), offset=offset).double()
    assert torch.allclose(got, expected.flatten(-2), atol=1e-5), (got - expected.flatten(-2)).abs().max()


def test_rope_position_zero_is_identity_and_norms_are_kept():
    rope = RotaryEmbedding(16)
    x = torch.randn(1, 2, 6, 16)
    out = rope(x)
    assert torch.allclose(out[:, :, 0], x[:, :, 0])
    assert torch.allclose(out.norm(dim=-1), x.norm(dim=-1), atol=1e-5)


@pytest.mark.parametrize("shift", [1, 7, 100])
def test_rope_scores_depend_only_on_relative_position(shift):
    gen = torch.Generator().manual_seed(shift)
    rope = RotaryEmbedding(32)
    q = torch.randn(1, 1, 1, 32, generator=gen).expand(1, 1, 6, 32)  # the same query at positions 0..5
    k = torch.randn(1, 1, 1, 32, generator=gen).expand(1, 1, 6, 32)
    scores = rope(q) @ rope(k).transpose(-2, -1)  # (1, 1, 6, 6): entry (m, n)
    shifted = rope(q, offset=shift) @ rope(k, offset=shift).transpose(-2, -1)
    assert torch.allclose(scores, shifted, atol=1e-4), (scores - shifted).abs().max()
    diagonals = [torch.diagonal(scores[0, 0], offset=o) for o in range(-5, 6)]
    for diag in diagonals:  # constant along each diagonal m - n = const
        assert torch.allclose(diag, diag[0].expand_as(diag), atol=1e-4)
    assert not torch.allclose(diagonals[5][0], diagonals[6][0])  # but different distances differ


def test_apply_rotary_broadcasts():
    x = torch.randn(2, 4, 3, 6)
    cos, sin = torch.ones(3, 3), torch.zeros(3, 3)
    assert torch.equal(apply_rotary(x, cos, sin), x)


def test_rope_bad_input():
    with pytest.raises(ValueError, match="head_dim must be a positive even number .*got 7"):
        RotaryEmbedding(7)
    with pytest.raises(ValueError, match=r"x must have exactly 4 dimensions \(B, H, T, d=8\); got shape \(2, 3, 8\)"):
        RotaryEmbedding(8)(torch.randn(2, 3, 8))
    with pytest.raises(ValueError, match=r"x must have d = 8 features per head; got shape \(1, 2, 3, 6\)"):
        RotaryEmbedding(8)(torch.randn(1, 2, 3, 6))
