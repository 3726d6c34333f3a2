"""attnlib.transformer.alibi: the paper's slopes, the bias by hand, use as an additive mask, errors."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import assert_close

from attnlib.functional import scaled_dot_product_attention
from attnlib.masks import causal_mask, combine_masks
from attnlib.transformer.alibi import alibi_bias, alibi_slopes


def test_slopes_power_of_two():
    assert alibi_slopes(8).tolist() == [1 / 2, 1 / 4, 1 / 8, 1 / 16, 1 / 32, 1 / 64, 1 / 128, 1 / 256]
    assert_close(alibi_slopes(16), torch.tensor([2 ** (-0.5 * k) for k in range(1, 17)]), 1e-7, "16 heads")
    assert alibi_slopes(1).tolist() == [1 / 256]
    assert alibi_slopes(2).tolist() == [1 / 16, 1 / 256]


def test_slopes_other_head_counts():
    # 6 heads: the 4-head slopes 2^-2, 2^-4, 2^-6, 2^-8, then every other 8-head slope: 2^-1, 2^-3.
    assert alibi_slopes(6).tolist() == [1 / 4, 1 / 16, 1 / 64, 1 / 256, 1 / 2, 1 / 8]
    # 3 heads: 2^-4, 2^-8, then the first of 2^-2, 2^-6 (every other 4-head slope).
    assert alibi_slopes(3).tolist() == [1 / 16, 1 / 256, 1 / 4]
    # 12 heads: the 8-head slopes, then 2^-0.5, 2^-1.5, 2^-2.5, 2^-3.5 (every other 16-head slope).
    expected = [2.0**-k for k in range(1, 9)] + [2.0 ** -(k + 0.5) for k in range(4)]
    assert_close(alibi_slopes(12), torch.tensor(expected), 1e-7, "12 heads")


def test_bias_by_hand():
    bias = alibi_bias(2, 3)  # slopes 1/16, 1/256
    assert bias.shape == (2, 3, 3) and bias.dtype == torch.float32
    distance = torch.tensor([[0.0, 1, 2], [1, 0, 1], [2, 1, 0]])
    assert_close(bias, torch.stack([-distance / 16, -distance / 256]), 0.0, "bias")
    # A cache holding 4 tokens, 2 new queries at positions 4 and 5, keys 0..5.
    cached = alibi_bias(8, 2, offset=4)
    assert cached.shape == (8, 2, 6)
    assert cached[0].tolist() == [[-2.0, -1.5, -1.0, -0.5, 0.0, -0.5], [-2.5, -2.0, -1.5, -1.0, -0.5, 0.0]]
    assert_close(cached, alibi_bias(8, 6)[:, 4:], 0.0, "the last rows of the full bias")
    assert alibi_bias(4, 3, 5, dtype=torch.float64).shape == (4, 3, 5)


def test_as_additive_mask_in_attention():
    gen = torch.Generator().manual_seed(0)
    B, H, T, d = 2, 4, 6, 8
    q, k, v = (torch.randn(B, H, T, d, generator=gen, dtype=torch.float64) for _ in range(3))
    mask = combine_masks(
        {"causal": causal_mask(T), "alibi": alibi_bias(H, T, dtype=torch.float64)}, dtype=torch.float64
    )  # (H, T, T), -inf above the diagonal
    out, weights = scaled_dot_product_attention(q, k, v, attn_mask=mask)
    # By hand: softmax over j <= i of q.k / sqrt(d) - m_h (i - j).
    slopes = [2.0 ** (-8 * (h + 1) / H) for h in range(H)]
    expected = torch.zeros(B, H, T, T, dtype=torch.float64)
    for b in range(B):
        for h in range(H):
            for i in range(T):
                s = [float(q[b, h, i] @ k[b, h, j]) / math.sqrt(d) - slopes[h] * (i - j) for j in range(i + 1)]
                e = [math.exp(x - max(s)) for x in s]
                expected[b, h, i, : i + 1] = torch.tensor(e, dtype=torch.float64) / sum(e)
    assert_close(weights, expected, 1e-12, "weights")
    assert_close(out, expected @ v, 1e-12, "output")
    fused, _ = scaled_dot_product_attention(q, k, v, attn_mask=mask, need_weights=False)
    assert_close(fused, out, 1e-12, "torch's kernel with the same float mask")
    plain, _ = scaled_dot_product_attention(q, k, v, is_causal=True)
    assert (plain - out).abs().max() > 1e-3  # the bias changes something


def test_bad_input():
    with pytest.raises(ValueError, match="num_heads must be >= 1; got 0"):
        alibi_slopes(0)
    with pytest.raises(ValueError, match=r"lengths and offset must be >= 0; got query_len=2, key_len=3, offset=-1"):
        alibi_bias(4, 2, 3, offset=-1)
