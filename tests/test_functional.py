"""attnlib.functional: masks, masked softmax, scores, and parity with torch's SDPA."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from conftest import assert_close, stable_seed

import attnlib.functional as AF

TOL = {torch.float32: 1e-6, torch.float64: 1e-12}


# ----------------------------------------------------------------------------- SDPA parity
def _masks(kind: str, batch: tuple[int, ...], L: int, S: int, dtype, gen):
    """Masks of every supported kind, broadcastable to (*batch, L, S)."""
    if kind == "none":
        return None
    if kind == "bool_2d":
        m = torch.rand(L, S, generator=gen) > 0.3
        m[:, 0] = True  # keep every row non-empty (fully masked rows are tested separately)
        return m
    if kind == "bool_full":
        m = torch.rand(*batch, L, S, generator=gen) > 0.5
        m[..., 0] = True
        return m
    if kind == "bool_padding":  # (B, 1, ..., 1, S): key padding, broadcast over heads and queries
        lengths = torch.randint(1, S + 1, (batch[0],), generator=gen)
        m = AF.lengths_to_mask(lengths, S)  # (B, S)
        return m.view(batch[0], *([1] * (len(batch) - 1)), 1, S)
    if kind == "float_additive":  # finite biases and some -inf
        m = torch.randn(L, S, generator=gen, dtype=dtype)
        m[torch.rand(L, S, generator=gen) > 0.7] = float("-inf")
        m[:, -1] = 0.0
        return m
    raise AssertionError(kind)


SHAPES = [
    # (batch dims, L, S, E, Ev)
    ((3,), 5, 7, 8, 8),
    ((2, 4), 6, 6, 16, 8),
    ((2, 3), 1, 9, 4, 12),
    ((1, 2, 3), 4, 5, 8, 3),
    ((2, 2), 33, 65, 64, 64),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("mask_kind", ["none", "bool_2d", "bool_full", "bool_padding", "float_additive"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"batch{s[0]}-L{s[1]}-S{s[2]}-E{s[3]}-Ev{s[4]}")
def test_sdpa_matches_torch(shape, mask_kind, dtype):
    batch, L, S, E, Ev = shape
    gen = torch.Generator().manual_seed(stable_seed(shape, mask_kind))
    q = torch.randn(*batch, L, E, generator=gen, dtype=dtype)
    k = torch.randn(*batch, S, E, generator=gen, dtype=dtype)
    v = torch.randn(*batch, S, Ev, generator=gen, dtype=dtype)
    mask = _masks(mask_kind, batch, L, S, dtype, gen)
    out, weights = AF.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert out.shape == ref.shape == (*batch, L, Ev)
    assert weights.shape == (*batch, L, S)
    assert_close(out, ref, TOL[dtype], f"output vs torch ({mask_kind})")
    assert_close(weights.sum(-1), torch.ones_like(weights.sum(-1)), 10 * TOL[dtype], "row sums")


@pytest.mark.parametrize("L,S", [(6, 6), (4, 9), (9, 4)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sdpa_causal_matches_torch(L, S, dtype):
    gen = torch.Generator().manual_seed(L * 100 + S)
    q = torch.randn(2, 3, L, 8, generator=gen, dtype=dtype)
    k = torch.randn(2, 3, S, 8, generator=gen, dtype=dtype)
    v = torch.randn(2, 3, S, 5, generator=gen, dtype=dtype)
    out, weights = AF.scaled_dot_product_attention(q, k, v, is_causal=True)
    ref = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert_close(out, ref, TOL[dtype], "causal output")
    # no weight on the future (top-left aligned: query i sees keys 0..i)
    future = ~AF.causal_mask(L, S)
    assert weights[..., future].abs().max().item() == 0.0 if future.any() else True
    # is_causal and the explicit boolean mask are the same thing
    out_mask, _ = AF.scaled_dot_product_attention(q, k, v, attn_mask=AF.causal_mask(L, S))
    assert torch.equal(out, out_mask)


@pytest.mark.parametrize("scale", [0.05, 1.0, 3.0])
def test_sdpa_custom_scale_matches_torch(scale):
    gen = torch.Generator().manual_seed(7)
    q, k, v = (torch.randn(2, 4, 6, 8, generator=gen) for _ in range(3))
    out, _ = AF.scaled_dot_product_attention(q, k, v, scale=scale)
    assert_close(out, F.scaled_dot_product_attention(q, k, v, scale=scale), 1e-6, f"scale={scale}")


def test_sdpa_weights_are_softmax_of_scaled_scores():
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 5, 16, generator=gen, dtype=torch.float64) for _ in range(3))
    _, weights = AF.scaled_dot_product_attention(q, k, v)
    expected = torch.softmax(q @ k.transpose(-2, -1) / 4.0, dim=-1)
    assert_close(weights, expected, 1e-12, "weights")


def test_sdpa_head_layouts_agree():
    """(B, H, L, E) attention equals running each head of a (B*H, L, E) batch separately."""
    gen = torch.Generator().manual_seed(1)
    q = torch.randn(2, 4, 5, 8, generator=gen)
    k = torch.randn(2, 4, 7, 8, generator=gen)
    v = torch.randn(2, 4, 7, 6, generator=gen)
    out, w = AF.scaled_dot_product_attention(q, k, v)
    flat_out, flat_w = AF.scaled_dot_product_attention(q.flatten(0, 1), k.flatten(0, 1), v.flatten(0, 1))
    assert torch.allclose(out.flatten(0, 1), flat_out, atol=1e-7)
    assert torch.allclose(w.flatten(0, 1), flat_w, atol=1e-7)
    # each head on its own, read out of (B, L, H, E) tensors (the layout before the transpose)
    q_blhe, k_blhe, v_blhe = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # (B, L, H, E)
    for h in range(4):
        head_out, _ = AF.scaled_dot_product_attention(q_blhe[:, :, h], k_blhe[:, :, h], v_blhe[:, :, h])
        assert_close(head_out, out[:, h], 1e-6, f"head {h}")


def test_sdpa_need_weights_false_uses_torch_kernel():
    gen = torch.Generator().manual_seed(2)
    q, k, v = (torch.randn(2, 3, 6, 8, generator=gen) for _ in range(3))
    mask = torch.rand(6, 6, generator=gen) > 0.2
    mask[:, 0] = True
    out, weights = AF.scaled_dot_product_attention(q, k, v, attn_mask=mask, need_weights=False)
    assert weights is None
    assert torch.equal(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask))


def test_sdpa_fully_masked_row_gives_zeros_not_nan():
    gen = torch.Generator().manual_seed(3)
    q = torch.randn(2, 4, 8, generator=gen, requires_grad=True)
    k = torch.randn(2, 5, 8, generator=gen, requires_grad=True)
    v = torch.randn(2, 5, 3, generator=gen, requires_grad=True)
    mask = torch.ones(2, 4, 5, dtype=torch.bool)
    mask[0, 1] = False  # query 1 of batch 0 may attend to nothing
    out, weights = AF.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert torch.isfinite(out).all() and torch.isfinite(weights).all()
    assert torch.equal(weights[0, 1], torch.zeros(5))
    assert torch.equal(out[0, 1], torch.zeros(3))
    out.sum().backward()
    for t in (q, k, v):
        assert torch.isfinite(t.grad).all()
    # the other rows still agree with torch
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    keep = torch.ones(2, 4, dtype=torch.bool)
    keep[0, 1] = False
    assert_close(out[keep], ref[keep], 1e-6, "rows with something to attend to")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("kind", ["bool", "additive"])
def test_sdpa_fast_path_fully_blocked_row_gives_zeros(dtype, kind):
    """need_weights=False hands the fused kernel a row with no key; the result is still zeros."""
    gen = torch.Generator().manual_seed(31)
    q, k, v = (torch.randn(2, 3, 4, 8, generator=gen).to(dtype) for _ in range(3))
    allowed = torch.rand(2, 1, 4, 4, generator=gen) > 0.3
    allowed[..., 0] = True
    allowed[1, 0, 2] = False  # query 2 of batch 1 may attend to nothing, in every head
    mask = allowed if kind == "bool" else torch.zeros(allowed.shape, dtype=dtype).masked_fill(~allowed, -math.inf)
    fast, none = AF.scaled_dot_product_attention(q, k, v, attn_mask=mask, need_weights=False)
    slow, _ = AF.scaled_dot_product_attention(q, k, v, attn_mask=mask, need_weights=True)
    assert none is None and fast.dtype == dtype
    assert torch.isfinite(fast).all()
    assert torch.equal(fast[1, :, 2], torch.zeros_like(fast[1, :, 2]))
    tol = 1e-6 if dtype == torch.float32 else 2e-2
    assert_close(fast, slow, tol, f"fast vs reference path ({dtype}, {kind})")


def test_sdpa_fast_path_guards_blocked_rows_whatever_the_kernel_returns(monkeypatch):
    """Older torch kernels return NaN for a row with no key (torch 2.13 returns zeros): with a
    kernel that does what the old ones did, attnlib's fast path must still give zeros."""
    real_kernel = F.scaled_dot_product_attention

    def old_kernel(q, k, v, attn_mask=None, **kwargs):
        out = real_kernel(q, k, v, attn_mask=attn_mask, **kwargs)
        allowed = attn_mask if attn_mask.dtype == torch.bool else ~torch.isneginf(attn_mask)
        return out.masked_fill(~allowed.any(-1, keepdim=True), float("nan"))

    monkeypatch.setattr(F, "scaled_dot_product_attention", old_kernel)
    q, k, v = torch.randn(1, 3, 4), torch.randn(1, 5, 4), torch.randn(1, 5, 2)
    mask = torch.ones(3, 5, dtype=torch.bool)
    mask[1] = False
    out, _ = AF.scaled_dot_product_attention(q, k, v, attn_mask=mask, need_weights=False)
    assert torch.isfinite(out).all() and torch.equal(out[0, 1], torch.zeros(2))


def test_sdpa_fully_masked_additive_row_gives_zeros():
    q, k, v = torch.randn(1, 3, 4), torch.randn(1, 6, 4), torch.randn(1, 6, 2)
    mask = torch.zeros(3, 6)
    mask[2] = float("-inf")
    out, weights = AF.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert torch.equal(weights[0, 2], torch.zeros(6)) and torch.equal(out[0, 2], torch.zeros(2))


def test_sdpa_gradients_match_torch_float64():
    gen = torch.Generator().manual_seed(4)
    tensors = [torch.randn(2, 3, 5, 4, generator=gen, dtype=torch.float64) for _ in range(3)]
    mask = torch.rand(5, 5, generator=gen) > 0.3
    mask[:, 0] = True
    ours = [t.clone().requires_grad_() for t in tensors]
    theirs = [t.clone().requires_grad_() for t in tensors]
    upstream = torch.randn(2, 3, 5, 4, generator=gen, dtype=torch.float64)
    (AF.scaled_dot_product_attention(*ours, attn_mask=mask)[0] * upstream).sum().backward()
    (F.scaled_dot_product_attention(*theirs, attn_mask=mask) * upstream).sum().backward()
    for a, b in zip(ours, theirs):
        assert_close(a.grad, b.grad, 1e-12, "gradient")


def test_sdpa_gradcheck():
    gen = torch.Generator().manual_seed(5)
    q, k, v = (torch.randn(1, 3, 4, generator=gen, dtype=torch.float64, requires_grad=True) for _ in range(3))
    mask = torch.tensor([[True, True, False], [True, False, False], [False, False, False]])
    assert torch.autograd.gradcheck(
        lambda a, b, c: AF.scaled_dot_product_attention(a, b, c, attn_mask=mask)[0], (q, k, v)
    )


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_sdpa_low_precision_large_logits_stay_finite(dtype):
    gen = torch.Generator().manual_seed(6)
    q32 = torch.randn(2, 4, 8, 64, generator=gen) * 30  # logits in the thousands
    k32 = torch.randn(2, 4, 8, 64, generator=gen) * 30
    v32 = torch.randn(2, 4, 8, 16, generator=gen)
    mask = torch.ones(8, 8, dtype=torch.bool).tril()
    out, weights = AF.scaled_dot_product_attention(q32.to(dtype), k32.to(dtype), v32.to(dtype), attn_mask=mask)
    assert out.dtype == dtype and weights.dtype == dtype
    assert torch.isfinite(out).all() and torch.isfinite(weights).all()
    ref, _ = AF.scaled_dot_product_attention(
        q32.to(dtype).float(), k32.to(dtype).float(), v32.to(dtype).float(), attn_mask=mask
    )
    assert_close(out.float(), ref, 0.05, f"{dtype} vs float32")


def test_sdpa_dropout_zeroes_or_rescales_weights():
    torch.manual_seed(0)
    S = 6
    q, k = torch.randn(1, 4, 8), torch.randn(1, S, 8)
    v = torch.eye(S)[None]  # output row == the (dropped) weight row
    p = 0.5
    out, weights = AF.scaled_dot_product_attention(q, k, v, dropout_p=p)
    kept = out != 0
    assert kept.any() and (~kept).any()
    assert torch.allclose(out[kept], (weights / (1 - p))[kept])
    _, weights_no_dropout = AF.scaled_dot_product_attention(q, k, v)
    assert torch.equal(weights, weights_no_dropout)  # returned weights are the distribution


@pytest.mark.parametrize(
    "q_shape,k_shape,v_shape,match",
    [
        ((8,), (5, 8), (5, 8), r"q must have at least 2 dimensions .* got shape \(8,\)"),
        ((2, 4, 8), (2, 5, 7), (2, 5, 3), r"feature size E.*\(2, 4, 8\).*\(2, 5, 7\)"),
        ((2, 4, 8), (2, 5, 8), (2, 6, 3), r"number of keys S.*\(2, 5, 8\).*\(2, 6, 3\)"),
        ((2, 4, 8), (3, 5, 8), (3, 5, 3), r"batch dimensions.*\(2, 4, 8\).*\(3, 5, 8\)"),
        ((2, 3, 4, 8), (2, 5, 8), (2, 5, 8), r"batch dimensions.*\(2, 3, 4, 8\).*\(2, 5, 8\)"),
    ],
)
def test_sdpa_bad_shapes_raise(q_shape, k_shape, v_shape, match):
    with pytest.raises(ValueError, match=match):
        AF.scaled_dot_product_attention(torch.randn(q_shape), torch.randn(k_shape), torch.randn(v_shape))


def test_sdpa_bad_masks_raise():
    q, k, v = torch.randn(2, 4, 8), torch.randn(2, 5, 8), torch.randn(2, 5, 3)
    with pytest.raises(ValueError, match=r"torch.bool .* got dtype torch.int64"):
        AF.scaled_dot_product_attention(q, k, v, attn_mask=torch.ones(4, 5, dtype=torch.long))
    with pytest.raises(ValueError, match=r"float tensor of the scores' dtype torch.float32.*got dtype torch.float64"):
        AF.scaled_dot_product_attention(q, k, v, attn_mask=torch.zeros(4, 5, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"shape \(5, 4\) does not broadcast to .* \(2, 4, 5\)"):
        AF.scaled_dot_product_attention(q, k, v, attn_mask=torch.ones(5, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"shape \(3, 4, 5\) does not broadcast"):
        AF.scaled_dot_product_attention(q, k, v, attn_mask=torch.ones(3, 4, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="not both"):
        AF.scaled_dot_product_attention(q, k, v, attn_mask=torch.ones(4, 5, dtype=torch.bool), is_causal=True)
    with pytest.raises(ValueError, match="dropout_p"):
        AF.scaled_dot_product_attention(q, k, v, dropout_p=1.0)


def test_sdpa_mixed_dtypes_raise():
    with pytest.raises(ValueError, match=r"one dtype.*q: torch.float32, k: torch.float64"):
        AF.scaled_dot_product_attention(
            torch.randn(2, 3, 4), torch.randn(2, 3, 4, dtype=torch.float64), torch.randn(2, 3, 4)
        )
    with pytest.raises(ValueError, match="floating-point"):
        AF.scaled_dot_product_attention(*(torch.ones(2, 3, 4, dtype=torch.long) for _ in range(3)))
    with pytest.raises(TypeError, match="torch.Tensor"):
        AF.scaled_dot_product_attention([[1.0]], torch.randn(1, 1), torch.randn(1, 1))


# ----------------------------------------------------------------------------- masked softmax
def test_masked_softmax_rows_sum_to_one_and_masked_entries_are_zero():
    gen = torch.Generator().manual_seed(8)
    scores = torch.randn(3, 4, 6, generator=gen)
    mask = torch.rand(3, 4, 6, generator=gen) > 0.4
    mask[..., 2] = True
    w = AF.masked_softmax(scores, mask)
    assert torch.equal(w[~mask], torch.zeros(int((~mask).sum())))
    assert torch.allclose(w.sum(-1), torch.ones(3, 4))
    # equal to a softmax over the kept entries only
    row = scores[0, 0][mask[0, 0]]
    assert torch.allclose(w[0, 0][mask[0, 0]], torch.softmax(row, 0))


def test_masked_softmax_bool_and_additive_masks_agree():
    gen = torch.Generator().manual_seed(9)
    scores = torch.randn(4, 5, generator=gen)
    mask = torch.rand(4, 5, generator=gen) > 0.5
    mask[:, 0] = True
    additive = torch.zeros(4, 5).masked_fill(~mask, float("-inf"))
    assert torch.equal(AF.masked_softmax(scores, mask), AF.masked_softmax(scores, additive))


def test_masked_softmax_fully_masked_row_is_zero_with_finite_gradient():
    scores = torch.randn(2, 4, requires_grad=True)
    mask = torch.tensor([[True, False, True, True], [False, False, False, False]])
    w = AF.masked_softmax(scores, mask)
    assert torch.equal(w[1], torch.zeros(4))
    assert torch.allclose(w[0].sum(), torch.tensor(1.0))
    (w * torch.randn(2, 4)).sum().backward()
    assert torch.isfinite(scores.grad).all()
    assert torch.equal(scores.grad[1], torch.zeros(4))


def test_masked_softmax_float16_does_not_overflow():
    """The -1e9 trap: in float16 -1e9 is -inf and a fully masked row becomes NaN."""
    scores = torch.randn(2, 4).half()
    mask = torch.tensor([[True, True, False, False], [False, False, False, False]])
    # the trap, in its two current forms: masked_fill(-1e9) refuses float16 outright, and an
    # additive mask built as (~mask) * -1e9 overflows to -inf, so a fully masked row is NaN.
    with pytest.raises(RuntimeError, match="overflow"):
        scores.masked_fill(~mask, -1e9)
    naive = torch.softmax(scores + (~mask).half() * -1e9, dim=-1)
    assert torch.isnan(naive[1]).all(), "the trap this test guards against no longer exists"
    w = AF.masked_softmax(scores, mask)
    assert w.dtype == torch.float16
    assert torch.isfinite(w).all() and torch.equal(w[1], torch.zeros(4, dtype=torch.float16))


def test_masked_softmax_temperature():
    scores = torch.tensor([1.0, 2.0, 4.0])
    cold = AF.masked_softmax(scores, temperature=0.01)
    hot = AF.masked_softmax(scores, temperature=1000.0)
    assert torch.allclose(cold, torch.tensor([0.0, 0.0, 1.0]), atol=1e-6)
    assert torch.allclose(hot, torch.full((3,), 1 / 3), atol=1e-3)
    assert torch.allclose(AF.masked_softmax(scores, temperature=2.0), torch.softmax(scores / 2.0, 0))
    with pytest.raises(ValueError, match="temperature must be > 0; got 0"):
        AF.masked_softmax(scores, temperature=0)


def test_masked_softmax_bad_input():
    with pytest.raises(ValueError, match="floating-point"):
        AF.masked_softmax(torch.ones(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"shape \(4,\) does not broadcast .* \(2, 3\)"):
        AF.masked_softmax(torch.randn(2, 3), torch.ones(4, dtype=torch.bool))
    with pytest.raises(ValueError, match="dtype torch.uint8"):
        AF.masked_softmax(torch.randn(2, 3), torch.ones(2, 3, dtype=torch.uint8))


# ----------------------------------------------------------------------------- scores
def _pairs(q, k, fn):
    """Reference: apply a per-pair score function in Python loops over a (L, S) grid."""
    return torch.tensor([[fn(q[i], k[j]) for j in range(k.shape[0])] for i in range(q.shape[0])], dtype=q.dtype)


@pytest.fixture
def qk():
    gen = torch.Generator().manual_seed(10)
    return torch.randn(3, 4, generator=gen, dtype=torch.float64), torch.randn(5, 4, generator=gen, dtype=torch.float64)


def test_dot_and_scaled_dot_scores_match_formula(qk):
    q, k = qk
    assert torch.allclose(AF.dot_score(q, k), _pairs(q, k, lambda a, b: float(a @ b)))
    assert torch.allclose(AF.scaled_dot_score(q, k), _pairs(q, k, lambda a, b: float(a @ b) / 2.0))
    assert torch.allclose(AF.scaled_dot_score(q, k, scale=0.1), _pairs(q, k, lambda a, b: 0.1 * float(a @ b)))
    assert AF.dot_score(torch.randn(2, 3, 6, 4), torch.randn(2, 3, 7, 4)).shape == (2, 3, 6, 7)


def test_additive_score_matches_formula():
    gen = torch.Generator().manual_seed(11)
    q = torch.randn(3, 4, generator=gen, dtype=torch.float64)
    k = torch.randn(5, 6, generator=gen, dtype=torch.float64)
    w_q = torch.randn(7, 4, generator=gen, dtype=torch.float64)
    w_k = torch.randn(7, 6, generator=gen, dtype=torch.float64)
    v = torch.randn(7, generator=gen, dtype=torch.float64)
    expected = _pairs(q, k, lambda a, b: float(v @ torch.tanh(w_q @ a + w_k @ b)))
    assert torch.allclose(AF.additive_score(q, k, w_q, w_k, v), expected)


def test_bilinear_score_matches_formula():
    gen = torch.Generator().manual_seed(12)
    q = torch.randn(3, 4, generator=gen, dtype=torch.float64)
    k = torch.randn(5, 6, generator=gen, dtype=torch.float64)
    w = torch.randn(4, 6, generator=gen, dtype=torch.float64)
    assert torch.allclose(AF.bilinear_score(q, k, w), _pairs(q, k, lambda a, b: float(a @ w @ b)))
    # with W = I it is the dot score
    assert torch.allclose(AF.bilinear_score(q, q, torch.eye(4, dtype=torch.float64)), AF.dot_score(q, q))


def test_concat_score_matches_formula_and_equals_additive_with_split_weights():
    gen = torch.Generator().manual_seed(13)
    q = torch.randn(2, 3, 4, generator=gen, dtype=torch.float64)
    k = torch.randn(2, 5, 6, generator=gen, dtype=torch.float64)
    w = torch.randn(7, 10, generator=gen, dtype=torch.float64)
    v = torch.randn(7, generator=gen, dtype=torch.float64)
    scores = AF.concat_score(q, k, w, v)
    expected = _pairs(q[1], k[1], lambda a, b: float(v @ torch.tanh(w @ torch.cat([a, b]))))
    assert torch.allclose(scores[1], expected)
    assert torch.allclose(scores, AF.additive_score(q, k, w[:, :4], w[:, 4:], v))


def test_scores_bad_input():
    q, k = torch.randn(3, 4), torch.randn(5, 6)
    with pytest.raises(ValueError, match=r"feature size E.*\(3, 4\).*\(5, 6\)"):
        AF.dot_score(q, k)
    with pytest.raises(ValueError, match=r"w_q must have shape \(7, 4\); got \(7, 5\)"):
        AF.additive_score(q, k, torch.randn(7, 5), torch.randn(7, 6), torch.randn(7))
    with pytest.raises(ValueError, match=r"w must have shape \(4, 6\); got \(6, 4\)"):
        AF.bilinear_score(q, k, torch.randn(6, 4))
    with pytest.raises(ValueError, match=r"w must have shape \(7, 10\); got \(7, 9\)"):
        AF.concat_score(q, k, torch.randn(7, 9), torch.randn(7))
    with pytest.raises(ValueError, match=r"v must have exactly 1 dimensions"):
        AF.concat_score(q, k, torch.randn(7, 10), torch.randn(7, 1))
    with pytest.raises(ValueError, match=r"q must have at least 2 dimensions"):
        AF.scaled_dot_score(torch.randn(4), k)
    with pytest.raises(ValueError, match=r"batch dimensions"):
        AF.dot_score(torch.randn(2, 3, 4), torch.randn(3, 5, 4))


def test_scaled_dot_score_keeps_unit_variance():
    """The reason for 1/sqrt(E): unit-variance q and k give dot scores of variance E, and
    scaled_dot_score brings them back to variance 1."""
    gen = torch.Generator().manual_seed(14)
    for E in (4, 64, 512):
        q = torch.randn(4000, 1, E, generator=gen)
        k = torch.randn(4000, 1, E, generator=gen)
        assert abs(AF.dot_score(q, k).var().item() / E - 1) < 0.1
        assert abs(AF.scaled_dot_score(q, k).var().item() - 1) < 0.1
