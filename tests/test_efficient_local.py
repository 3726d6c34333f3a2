"""attnlib.efficient.local: blocked sliding-window attention equals full attention with the band mask."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from conftest import assert_close

import attnlib.functional as AF
from attnlib.efficient.local import sliding_window_attention, sliding_window_mask


def test_mask_by_hand():
    expected = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 0], [0, 1, 1, 1], [0, 0, 1, 1]], dtype=torch.bool)
    assert torch.equal(sliding_window_mask(4, 1), expected)
    assert torch.equal(sliding_window_mask(4, 1, causal=True), expected.tril())
    assert torch.equal(sliding_window_mask(4, 10, causal=True), AF.causal_mask(4))
    assert sliding_window_mask(7, 2).sum(-1).tolist() == [3, 4, 5, 5, 5, 4, 3]


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("seed", range(6))
def test_matches_full_attention_with_band_mask(seed, causal):
    g = torch.Generator().manual_seed(seed)
    r = lambda lo, hi: int(torch.randint(lo, hi + 1, (1,), generator=g))  # noqa: E731
    batch, T, E, Ev, window = (r(1, 2), r(1, 3)), r(1, 60), r(1, 16), r(1, 16), r(0, 20)
    block = None if seed % 2 else r(1, 17)
    q, k, v = (
        torch.randn(*batch, T, E, generator=g),
        torch.randn(*batch, T, E, generator=g),
        torch.randn(*batch, T, Ev, generator=g),
    )
    mask = sliding_window_mask(T, window, causal)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    out, weights = sliding_window_attention(q, k, v, window, causal, block_size=block, need_weights=True)
    what = f"T={T} window={window} block={block} causal={causal}"
    assert out.shape == (*batch, T, Ev) and weights.shape == (*batch, T, T)
    assert_close(out, expected, 1e-5, what)
    assert_close(weights, AF.scaled_dot_product_attention(q, k, v, attn_mask=mask)[1], 1e-6, what)
    assert (weights[..., ~mask] == 0).all()


def test_key_mask_and_empty_rows():
    g = torch.Generator().manual_seed(7)
    q, k, v = (torch.randn(3, 2, 30, 8, generator=g) for _ in range(3))
    key_mask = AF.lengths_to_mask(torch.tensor([30, 17, 4]), 30)[:, None, :]  # (B, 1, T)
    band = sliding_window_mask(30, 3, causal=True)
    out = sliding_window_attention(q, k, v, 3, causal=True, key_mask=key_mask)
    expected = AF.scaled_dot_product_attention(q, k, v, attn_mask=band & key_mask[..., None, :])[0]
    assert_close(out, expected, 1e-5)
    assert (out[2, :, 8:] == 0).all() and not out.isnan().any()  # queries 8.. of sequence 2 see only padding


def test_gradients_match_masked_sdpa():
    g = torch.Generator().manual_seed(8)
    tensors = [torch.randn(2, 2, 25, 6, generator=g) for _ in range(3)]
    mask = sliding_window_mask(25, 4)
    grads = []
    for fn in (
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=mask),
        lambda q, k, v: sliding_window_attention(q, k, v, 4, block_size=3),
    ):
        leaves = [t.clone().requires_grad_(True) for t in tensors]
        out = fn(*leaves)
        (out * torch.linspace(-1, 1, out.numel()).view(out.shape)).sum().backward()
        grads.append([leaf.grad for leaf in leaves])
    for name, a, b in zip("qkv", *grads):
        assert_close(a, b, 1e-5, f"grad {name}")


def test_memory_is_banded(shape_log):
    """The largest score tensor has T * (block + 2 window) entries, not T * T."""
    q = torch.randn(1, 1, 1000, 4)
    out = sliding_window_attention(q, q, q, 8, block_size=8)
    assert out.shape == (1, 1, 1000, 4)
    with shape_log() as log:
        sliding_window_attention(q, q, q, 8, block_size=8)
    largest = max(math.prod(s) for s in log.shapes)
    assert largest <= 1000 * (8 + 16) + 8 * 24, f"largest intermediate {largest} elements; T * T = {1000 * 1000}"
    with shape_log() as log:  # the check can fail: the full band-masked attention trips it
        AF.scaled_dot_product_attention(q, q, q, attn_mask=sliding_window_mask(1000, 8))
    assert max(math.prod(s) for s in log.shapes) >= 1000 * 1000


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_large_logits_stay_finite(dtype):
    g = torch.Generator().manual_seed(9)
    q, k, v = (torch.randn(2, 2, 33, 16, generator=g).mul(30).to(dtype) for _ in range(3))
    out = sliding_window_attention(q, k, v, 5)
    assert out.dtype == dtype and torch.isfinite(out).all()


def test_bad_input_names_the_shapes():
    q = torch.randn(2, 3, 5, 8)
    with pytest.raises(ValueError, match=r"same length T.*\(2, 3, 5, 8\).*\(2, 3, 6, 8\)"):
        sliding_window_attention(q, torch.randn(2, 3, 6, 8), torch.randn(2, 3, 6, 8), 2)
    with pytest.raises(ValueError, match="window must be >= 0; got -1"):
        sliding_window_attention(q, q, q, -1)
    with pytest.raises(ValueError, match="block_size must be >= 1"):
        sliding_window_attention(q, q, q, 2, block_size=0)
    with pytest.raises(ValueError, match=r"key_mask must be torch.bool broadcastable to \(2, 3, 5\).*\(2, 4\)"):
        sliding_window_attention(q, q, q, 2, key_mask=torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"feature size E"):
        sliding_window_attention(q, torch.randn(2, 3, 5, 7), q, 2)
