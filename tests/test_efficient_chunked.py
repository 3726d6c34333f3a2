"""attnlib.efficient.chunked: online-softmax attention equals torch's SDPA, never builds (L, S)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from conftest import assert_close

import attnlib.functional as AF
from attnlib.efficient.chunked import chunked_attention


def _random_config(seed: int):
    """A random (batch, L, S, E, Ev, chunk, key_chunk): odd lengths, T != S, Ev != E."""
    g = torch.Generator().manual_seed(seed)
    r = lambda lo, hi: int(torch.randint(lo, hi + 1, (1,), generator=g))  # noqa: E731
    batch = (r(1, 2), r(1, 3))
    return batch, r(1, 70), r(1, 70), r(1, 24), r(1, 24), r(1, 32), r(1, 32), g


def _mask(kind: str, batch, L: int, S: int, g: torch.Generator):
    if kind == "none":
        return None
    if kind == "bool":  # per (batch, head), rows kept non-empty (empty rows are tested below)
        m = torch.rand(*batch, L, S, generator=g) > 0.5
        m[..., 0] = True
        return m
    if kind == "padding":  # (B, 1, 1, S) broadcast over heads and queries
        lengths = torch.randint(1, S + 1, (batch[0],), generator=g)
        return AF.lengths_to_mask(lengths, S)[:, None, None, :]
    if kind == "float":  # finite biases and some -inf, 2-D, broadcast over batch and heads
        m = torch.randn(L, S, generator=g)
        m[torch.rand(L, S, generator=g) > 0.7] = float("-inf")
        m[:, -1] = 0.0
        return m
    raise AssertionError(kind)


@pytest.mark.parametrize("mask_kind", ["none", "bool", "padding", "float", "causal"])
@pytest.mark.parametrize("seed", range(8))
def test_matches_torch_sdpa(seed, mask_kind):
    batch, L, S, E, Ev, cq, ck, g = _random_config(seed)
    q, k, v = (
        torch.randn(*batch, L, E, generator=g),
        torch.randn(*batch, S, E, generator=g),
        torch.randn(*batch, S, Ev, generator=g),
    )
    causal = mask_kind == "causal"
    mask = None if causal else _mask(mask_kind, batch, L, S, g)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)
    out = chunked_attention(q, k, v, attn_mask=mask, is_causal=causal, chunk_size=cq, key_chunk_size=ck)
    assert out.shape == (*batch, L, Ev)
    assert_close(out, expected, 1e-5, f"L={L} S={S} E={E} Ev={Ev} chunks=({cq},{ck}) {mask_kind}")


@pytest.mark.parametrize("chunk", [1, 3, 16, 64, 512])
def test_chunk_size_does_not_change_the_result(chunk):
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(2, 2, 45, 8, generator=g, dtype=torch.float64) for _ in range(3))
    expected = AF.scaled_dot_product_attention(q, k, v, is_causal=True)[0]
    assert_close(chunked_attention(q, k, v, is_causal=True, chunk_size=chunk), expected, 1e-12)


def test_scale_and_log_sum_exp():
    g = torch.Generator().manual_seed(2)
    q, k, v = torch.randn(2, 11, 6, generator=g), torch.randn(2, 13, 6, generator=g), torch.randn(2, 13, 5, generator=g)
    out, lse = chunked_attention(q, k, v, scale=0.3, chunk_size=4, return_lse=True)
    assert_close(out, F.scaled_dot_product_attention(q, k, v, scale=0.3), 1e-5, "scale")
    assert lse.shape == (2, 11)
    assert_close(lse, torch.logsumexp(0.3 * q @ k.transpose(-2, -1), dim=-1), 1e-5, "lse")


def test_fully_masked_rows_give_zeros_not_nan():
    g = torch.Generator().manual_seed(3)
    q, k, v = (
        torch.randn(2, 3, 9, 4, generator=g),
        torch.randn(2, 3, 10, 4, generator=g),
        torch.randn(2, 3, 10, 4, generator=g),
    )
    mask = torch.rand(2, 3, 9, 10, generator=g) > 0.5
    mask[:, :, 2] = False  # query 2 sees nothing
    mask[0, 1] = False  # a whole head sees nothing
    q.requires_grad_(True)
    out, lse = chunked_attention(q, k, v, attn_mask=mask, chunk_size=4, key_chunk_size=3, return_lse=True)
    assert not out.isnan().any() and not lse.isnan().any()
    assert (out[:, :, 2] == 0).all() and (out[0, 1] == 0).all()
    assert torch.isneginf(lse[:, :, 2]).all()
    assert_close(out, AF.scaled_dot_product_attention(q, k, v, attn_mask=mask)[0], 1e-5)
    float_mask = torch.zeros(9, 10).masked_fill(~mask[1, 0], float("-inf"))
    out_f = chunked_attention(q, k, v, attn_mask=float_mask, chunk_size=4, key_chunk_size=3)
    assert not out_f.isnan().any() and (out_f[:, :, 2] == 0).all()
    out.sum().backward()
    assert not q.grad.isnan().any()


@pytest.mark.parametrize("mask_kind", ["none", "padding", "causal"])
def test_gradients_match_sdpa(mask_kind):
    g = torch.Generator().manual_seed(4)
    batch, L, S = (2, 2), 23, (23 if mask_kind == "causal" else 17)
    tensors = [
        torch.randn(*batch, L, 8, generator=g),
        torch.randn(*batch, S, 8, generator=g),
        torch.randn(*batch, S, 6, generator=g),
    ]
    mask = _mask("padding", batch, L, S, g) if mask_kind == "padding" else None
    grads = []
    for fn in (
        F.scaled_dot_product_attention,
        lambda *a, **kw: chunked_attention(*a, **kw, chunk_size=5, key_chunk_size=7),
    ):
        leaves = [t.clone().requires_grad_(True) for t in tensors]
        out = fn(*leaves, attn_mask=mask, is_causal=mask_kind == "causal")
        (out * torch.linspace(-1, 1, out.numel()).view(out.shape)).sum().backward()
        grads.append([leaf.grad for leaf in leaves])
    for name, a, b in zip("qkv", *grads):
        assert_close(a, b, 1e-5, f"grad {name}")


def test_gradcheck_float64():
    g = torch.Generator().manual_seed(5)
    q, k, v = (torch.randn(1, 2, 5, 3, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(3))
    assert torch.autograd.gradcheck(lambda q, k, v: chunked_attention(q, k, v, is_causal=True, chunk_size=2), (q, k, v))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_large_logits_stay_finite(dtype):
    g = torch.Generator().manual_seed(6)
    q, k, v = (torch.randn(2, 2, 40, 16, generator=g) * 30 for _ in range(3))  # logits of order 1e3-1e4
    mask = torch.rand(40, 40, generator=g) > 0.3
    mask[5] = False
    out = chunked_attention(q.to(dtype), k.to(dtype), v.to(dtype), attn_mask=mask, chunk_size=7)
    assert out.dtype == dtype and torch.isfinite(out).all()
    expected = AF.scaled_dot_product_attention(q.to(dtype), k.to(dtype), v.to(dtype), attn_mask=mask)[0]
    assert_close(out.float(), expected.float(), 0.05 * 30 if dtype == torch.bfloat16 else 0.02 * 30, str(dtype))


@pytest.mark.parametrize("causal", [False, True])
def test_never_materialises_the_score_matrix(causal, shape_log):
    """No intermediate is anywhere near the size of the (B, H, L, S) score matrix."""
    B, H, L, S, E, chunk = 1, 2, 200, 200, 8, 32
    q, k, v = torch.randn(B, H, L, E), torch.randn(B, H, S, E), torch.randn(B, H, S, E)
    with shape_log() as log:
        chunked_attention(q, k, v, is_causal=causal, chunk_size=chunk)
    largest = max(math.prod(s) for s in log.shapes)
    assert largest <= B * H * max(chunk * chunk, L * E), (
        f"largest intermediate {largest} elements, (L, S) has {B * H * L * S}"
    )
    with shape_log() as naive:  # the check can fail: the quadratic reference trips it
        AF.scaled_dot_product_attention(q, k, v, is_causal=causal)
    assert max(math.prod(s) for s in naive.shapes) >= B * H * L * S


def test_bad_input_names_the_shapes():
    q, k, v = torch.randn(2, 3, 5, 8), torch.randn(2, 3, 7, 8), torch.randn(2, 3, 7, 4)
    with pytest.raises(ValueError, match=r"feature size E.*\(2, 3, 5, 8\).*\(2, 3, 7, 6\)"):
        chunked_attention(q, torch.randn(2, 3, 7, 6), v)
    with pytest.raises(ValueError, match=r"number of keys S.*\(2, 3, 6, 4\)"):
        chunked_attention(q, k, torch.randn(2, 3, 6, 4))
    with pytest.raises(ValueError, match=r"same batch dimensions.*\(2, 4, 7, 8\)"):
        chunked_attention(q, torch.randn(2, 4, 7, 8), v)
    with pytest.raises(ValueError, match=r"attn_mask of shape \(4, 7\) does not broadcast.*\(2, 3, 5, 7\)"):
        chunked_attention(q, k, v, attn_mask=torch.ones(4, 7, dtype=torch.bool))
    with pytest.raises(ValueError, match="torch.bool"):
        chunked_attention(q, k, v, attn_mask=torch.ones(5, 7, dtype=torch.int64))
    with pytest.raises(ValueError, match="not both"):
        chunked_attention(q, k, v, attn_mask=torch.ones(5, 7, dtype=torch.bool), is_causal=True)
    with pytest.raises(ValueError, match="chunk sizes must be >= 1"):
        chunked_attention(q, k, v, chunk_size=0)
    with pytest.raises(ValueError, match="one dtype"):
        chunked_attention(q, k.double(), v)
