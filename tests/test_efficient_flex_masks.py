"""attnlib.efficient.flex_masks: every mask_mod / score_mod equals attnlib's dense reference, both as a
dense mask and through flex_attention (eager, CPU, float64); Luong's local-p relation; GQA; errors."""

from __future__ import annotations

import pytest
import torch
from conftest import assert_close
from torch.nn.attention.flex_attention import and_masks, create_mask

from attnlib.efficient.flex_masks import (
    alibi_score_mod,
    causal_mask_mod,
    flex_attend,
    local_p_mask_mod,
    local_p_score_mod,
    padding_mask_mod,
    score_mod_bias,
    sink_window_mask_mod,
    sliding_window_mask_mod,
)
from attnlib.efficient.local import sliding_window_mask
from attnlib.functional import masked_softmax, scaled_dot_product_attention
from attnlib.masks import causal_mask, combine_masks, lengths_to_mask
from attnlib.seq2seq.luong import gaussian_window, local_window_mask
from attnlib.transformer.alibi import alibi_bias
from attnlib.transformer.sink_cache import sink_window_mask

B, H, L, d = 2, 4, 11, 8
F64 = torch.float64
LENGTHS = torch.tensor([7, 0])  # the second sequence has no real key: its rows must give zeros
CENTERS = torch.tensor([[0.3, 2.0, 4.7, 9.5, 10.9, 1.2, 6.6, 3.3, 8.0, 5.5, 12.0]] * 2, dtype=F64)  # (B, L)
CENTERS[1] = CENTERS[1].flip(0)
HALF_WIDTH = 3
LUONG_LENGTHS = torch.tensor([L, 8])  # source lengths; centres beyond them are moved to the last real key


def _luong_reference(lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Luong's window (B, 1, L, S) and log-Gaussian (B, 1, L, S) from attnlib.seq2seq.luong, row by row."""
    flat = CENTERS.flatten()  # (B L,)
    window = local_window_mask(flat, lengths.repeat_interleave(L), L, HALF_WIDTH).view(B, 1, L, L)
    gaussian = gaussian_window(flat, L, HALF_WIDTH / 2).view(B, 1, L, L)
    return window, gaussian


def _cases() -> dict:
    """name -> (mask_mod or None, score_mod or None, attnlib's dense mask broadcastable to (B, H, L, L))."""
    padding = lengths_to_mask(LENGTHS, L)[:, None, None, :]  # (B, 1, 1, S)
    luong_window, gaussian = _luong_reference(LUONG_LENGTHS)
    return {
        "causal": (causal_mask_mod, None, causal_mask(L)),
        "padding": (padding_mask_mod(LENGTHS), None, padding),
        "padding+causal": (
            and_masks(padding_mask_mod(LENGTHS), causal_mask_mod),
            None,
            combine_masks({"p": padding, "c": causal_mask(L)}, F64),
        ),
        "sliding": (sliding_window_mask_mod(2, causal=False), None, sliding_window_mask(L, 2)),
        "sliding causal": (sliding_window_mask_mod(3), None, sliding_window_mask(L, 3, causal=True)),
        "sinks": (sink_window_mask_mod(2, 3), None, sink_window_mask(L, 2, 3)),
        "alibi": (
            causal_mask_mod,
            alibi_score_mod(H),
            combine_masks({"c": causal_mask(L), "a": alibi_bias(H, L, dtype=F64)}, F64),
        ),
        "local-p": (
            local_p_mask_mod(CENTERS, HALF_WIDTH, LUONG_LENGTHS),
            local_p_score_mod(CENTERS, HALF_WIDTH),
            combine_masks({"window": luong_window, "gaussian": gaussian.log()}, F64),
        ),
    }


CASES = _cases()


def _qkv(seed: int, heads_kv: int = H) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    return (
        torch.randn(B, H, L, d, generator=gen, dtype=F64),
        torch.randn(B, heads_kv, L, d, generator=gen, dtype=F64),
        torch.randn(B, heads_kv, L, d, generator=gen, dtype=F64),
    )


@pytest.mark.parametrize("name", list(CASES))
def test_dense_form_equals_attnlib(name):
    """Cheap: the mask_mod and score_mod turned dense, against attnlib's mask, entry by entry."""
    mask_mod, score_mod, reference = CASES[name]
    expected = reference.expand(B, H, L, L)
    allowed = create_mask(mask_mod, B, H, L, L, device="cpu")  # (B, H, L, S) bool
    assert torch.equal(allowed, expected if expected.dtype == torch.bool else ~torch.isneginf(expected))
    if score_mod is not None:
        bias = score_mod_bias(score_mod, B, H, L, L, dtype=F64)  # (B, H, L, S)
        assert_close(bias[allowed], expected[allowed], 1e-12, "bias where attention is allowed")


def test_flex_attention_equals_attnlib_reference():
    """Every case through torch's flex_attention (eager on the CPU) against attnlib's scaled
    dot-product attention with the dense mask.  One test with the module's mods, because each
    new mod function costs flex_attention a tracing of about 0.25 s on its first call."""
    for i, (name, (mask_mod, score_mod, reference)) in enumerate(CASES.items()):
        q, k, v = _qkv(i)
        out = flex_attend(q, k, v, mask_mod=mask_mod, score_mod=score_mod)
        ref, _ = scaled_dot_product_attention(q, k, v, attn_mask=reference)
        assert_close(out, ref, 1e-10, name)
        if name == "padding":  # the second sequence has no real key: zeros, not NaN
            assert not out.isnan().any() and bool((out[1] == 0).all()) and bool((out[0] != 0).any())
    out = flex_attend(q, k, v)  # no mask, no bias
    assert_close(out, scaled_dot_product_attention(q, k, v)[0], 1e-10, "plain")


def test_local_p_is_luong_renormalised():
    """As a score bias the Gaussian sits inside the softmax: the output is Luong's context vector
    divided by the sum of Luong's weights (which is below one)."""
    q, k, v = _qkv(5)
    window, gaussian = _luong_reference(LUONG_LENGTHS)  # (B, 1, L, S) each
    scores = q @ k.transpose(-2, -1) / d**0.5  # (B, H, L, S)
    luong = masked_softmax(scores, window) * gaussian  # (B, H, L, S), eq. 10
    context = luong @ v  # (B, H, L, d)
    mask_mod, score_mod, _ = CASES["local-p"]
    out = flex_attend(q, k, v, mask_mod=mask_mod, score_mod=score_mod)
    total = luong.sum(-1, keepdim=True)  # (B, H, L, 1)
    assert bool((total < 1).all())
    assert_close(out * total, context, 1e-10, "flex * sum of Luong's weights vs Luong's context")


def test_grouped_query_heads():
    q, k, v = _qkv(7, heads_kv=2)
    out = flex_attend(q, k, v, mask_mod=causal_mask_mod)
    ref, _ = scaled_dot_product_attention(
        q, k.repeat_interleave(2, dim=1), v.repeat_interleave(2, dim=1), is_causal=True
    )
    assert_close(out, ref, 1e-10, "G = 2 key/value heads for H = 4 query heads")


def test_bad_input():
    with pytest.raises(ValueError, match="lengths must be an integer tensor; got dtype torch.float32"):
        padding_mask_mod(torch.tensor([1.0]))
    with pytest.raises(ValueError, match="window must be >= 0; got -1"):
        sliding_window_mask_mod(-1)
    with pytest.raises(ValueError, match=r"got num_sinks=-1, window=2"):
        sink_window_mask_mod(-1, 2)
    with pytest.raises(ValueError, match=r"centers must have exactly 2 dimensions \(B, L\); got shape \(11,\)"):
        local_p_score_mod(CENTERS[0], 3)
    with pytest.raises(ValueError, match="centers must be a floating-point tensor"):
        local_p_mask_mod(torch.zeros(2, 3, dtype=torch.long), 3)
    with pytest.raises(ValueError, match=r"lengths must have shape \(B,\) = \(2,\)"):
        local_p_mask_mod(CENTERS, 3, torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="half_width must be > 0"):
        local_p_score_mod(CENTERS, 0)
    q, k, v = _qkv(0, heads_kv=3)
    with pytest.raises(ValueError, match=r"k and v need G heads with G dividing q's H; got q \(2, 4, 11, 8\)"):
        flex_attend(q, k, v)
    with pytest.raises(ValueError, match=r"q must have exactly 4 dimensions \(B, H, L, E\)"):
        flex_attend(q[0], k[0], v[0])
