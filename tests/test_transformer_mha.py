"""attnlib.transformer.mha: parity with torch.nn.MultiheadAttention, masks, errors, precision, recording."""

from __future__ import annotations

import zlib

import pytest
import torch
from conftest import assert_close
from torch import nn

from attnlib.functional import causal_mask, lengths_to_mask
from attnlib.record import record_attention
from attnlib.transformer.mha import MultiHeadAttention

TOL = 1e-5


def _inputs(mode: str, B: int, T: int, S: int, E: int, kdim: int, vdim: int, gen: torch.Generator):
    query = torch.randn(B, T, E, generator=gen)
    if mode == "self":
        return query, query, query
    return query, torch.randn(B, S, kdim, generator=gen), torch.randn(B, S, vdim, generator=gen)


def _masks(kind: str, B: int, H: int, T: int, S: int, gen: torch.Generator):
    """(ours: key_padding_mask, attn_mask, is_causal), (torch: key_padding_mask, attn_mask).

    Every row keeps key 0, so no row is fully masked (that case has its own test)."""
    lengths = torch.randint(1, S + 1, (B,), generator=gen)
    padding = lengths_to_mask(lengths, S)  # (B, S) True = real key
    bool_mask = torch.rand(T, S, generator=gen) > 0.4
    bool_mask[:, 0] = True
    float_mask = torch.randn(T, S, generator=gen)
    float_mask[torch.rand(T, S, generator=gen) > 0.7] = float("-inf")
    float_mask[:, 0] = 0.0
    if kind == "none":
        return (None, None, False), (None, None)
    if kind == "padding":
        return (padding, None, False), (~padding, None)
    if kind == "attn_bool":
        return (None, bool_mask, False), (None, ~bool_mask)
    if kind == "attn_float":
        return (None, float_mask, False), (None, float_mask)
    if kind == "causal":
        return (None, None, True), (None, ~causal_mask(T, S))
    if kind == "padding_float":
        return (padding, float_mask, False), (~padding, float_mask)
    if kind == "padding_causal":
        return (padding, None, True), (~padding, ~causal_mask(T, S))
    raise AssertionError(kind)


CONFIGS = [
    # (mode, B, T, S, E, H, kdim, vdim)
    ("self", 2, 5, 5, 16, 4, 16, 16),
    ("self", 3, 7, 7, 24, 3, 24, 24),
    ("cross", 2, 4, 9, 16, 2, 16, 16),
    ("cross_kv", 2, 6, 3, 12, 4, 10, 7),
    ("cross_kv", 1, 1, 8, 8, 1, 5, 9),
]
MASKS = ["none", "padding", "attn_bool", "attn_float", "causal", "padding_float", "padding_causal"]


@pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask")  # torch, on bool + float masks
@pytest.mark.parametrize("need_weights,average", [(False, True), (True, True), (True, False)])
@pytest.mark.parametrize("mask_kind", MASKS)
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "-".join(map(str, c)))
def test_matches_torch(config, mask_kind, need_weights, average):
    mode, B, T, S, E, H, kdim, vdim = config
    if mode == "self":
        S = T
    gen = torch.Generator().manual_seed(zlib.crc32(repr((config, mask_kind)).encode()))
    torch.manual_seed(0)
    reference = nn.MultiheadAttention(E, H, batch_first=True, kdim=kdim, vdim=vdim).eval()
    with torch.no_grad():  # non-zero biases, so that a bias mix-up shows
        reference.in_proj_bias.normal_()
        reference.out_proj.bias.normal_()
    ours = MultiHeadAttention.from_torch(reference).eval()
    query, key, value = _inputs(mode, B, T, S, E, kdim, vdim, gen)
    (kpm, am, causal), (t_kpm, t_am) = _masks(mask_kind, B, H, T, S, gen)
    out, weights = ours(
        query,
        key,
        value,
        key_padding_mask=kpm,
        attn_mask=am,
        is_causal=causal,
        need_weights=need_weights,
        average_attn_weights=average,
    )
    t_out, t_weights = reference(
        query,
        key,
        value,
        key_padding_mask=t_kpm,
        attn_mask=t_am,
        need_weights=need_weights,
        average_attn_weights=average,
    )
    assert out.shape == (B, T, E)
    assert_close(out, t_out, TOL, "output")
    if need_weights:
        assert weights.shape == ((B, T, S) if average else (B, H, T, S))
        assert_close(weights, t_weights, TOL, "weights")
    else:
        assert weights is None


@pytest.mark.parametrize("mask_kind", MASKS)
def test_fused_and_reference_paths_agree(mask_kind):
    gen = torch.Generator().manual_seed(3)
    B, T, E, H = 2, 6, 16, 4
    m = MultiHeadAttention(E, H).eval()
    x = torch.randn(B, T, E, generator=gen)
    (kpm, am, causal), _ = _masks(mask_kind, B, H, T, T, gen)
    fused, _ = m(x, x, x, key_padding_mask=kpm, attn_mask=am, is_causal=causal)
    reference, _ = m(x, x, x, key_padding_mask=kpm, attn_mask=am, is_causal=causal, need_weights=True)
    assert_close(fused, reference, 1e-6, "fused vs reference")


@pytest.mark.parametrize("shape", ["TS", "BTS", "BHTS"])
def test_attn_mask_shapes(shape):
    gen = torch.Generator().manual_seed(1)
    B, T, E, H = 2, 5, 8, 2
    m = MultiHeadAttention(E, H).eval()
    x = torch.randn(B, T, E, generator=gen)
    full = torch.rand(B, H, T, T, generator=gen) > 0.5
    full[..., 0] = True
    if shape == "TS":
        mask, per_head = full[0, 0], full[0, 0].expand(B, H, T, T)
    elif shape == "BTS":
        mask, per_head = full[:, 0], full[:, :1].expand(B, H, T, T)
    else:
        mask, per_head = full, full
    _, w = m(x, x, x, attn_mask=mask, need_weights=True, average_attn_weights=False)
    assert bool((w[~per_head] == 0).all()), "blocked pairs must get zero weight"
    assert_close(w.sum(-1), torch.ones(B, H, T), 1e-6, "rows sum to 1")


def test_fully_masked_row_gives_zero_not_nan():
    B, T, E, H = 2, 4, 8, 2
    m = MultiHeadAttention(E, H).eval()
    with torch.no_grad():
        m.out_proj.bias.normal_()
    x = torch.randn(B, T, E, requires_grad=True)
    padding = torch.ones(B, T, dtype=torch.bool)
    padding[1] = False  # sentence 1 has no real key at all
    for need_weights in (False, True):
        out, w = m(x, x, x, key_padding_mask=padding, need_weights=need_weights, average_attn_weights=False)
        assert torch.isfinite(out).all()
        assert_close(out[1], m.out_proj.bias.expand(T, E), 1e-6, "blocked rows: zero context, so only the bias")
        if need_weights:
            assert bool((w[1] == 0).all())
        out.sum().backward()
        assert torch.isfinite(x.grad).all()
        x.grad = None
    torch_mha = nn.MultiheadAttention(E, H, batch_first=True).eval()  # what torch does, for the record
    assert torch.isnan(torch_mha(x, x, x, key_padding_mask=~padding)[0][1]).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("need_weights", [False, True])
def test_half_precision_large_logits_finite(dtype, need_weights):
    gen = torch.Generator().manual_seed(2)
    m = MultiHeadAttention(16, 4).eval().to(dtype)
    x = (torch.randn(2, 6, 16, generator=gen) * 300).to(dtype)  # scores far beyond float16's range
    padding = torch.ones(2, 6, dtype=torch.bool)
    padding[0, 3:] = False
    out, w = m(x, x, x, key_padding_mask=padding, is_causal=True, need_weights=need_weights)
    assert out.dtype == dtype
    assert torch.isfinite(out).all()
    if need_weights:
        assert torch.isfinite(w).all()


def test_recording_emits_per_head_weights_without_changing_output():
    B, T, S, E, H = 2, 3, 5, 8, 4
    m = MultiHeadAttention(E, H, kdim=6, vdim=6).eval()
    q, kv = torch.randn(B, T, E), torch.randn(B, S, 6)
    plain, _ = m(q, kv, kv)
    with record_attention(m) as maps:
        recorded, _ = m(q, kv, kv)
    assert maps.names() == [""]
    assert maps.last("").shape == (B, H, T, S)
    assert_close(recorded, plain, 1e-6, "recording changed the output")
    _, w = m(q, kv, kv, need_weights=True, average_attn_weights=False)
    assert_close(maps.last(""), w, 1e-6, "recorded vs returned weights")


def test_gradients_flow_to_every_parameter():
    m = MultiHeadAttention(8, 2, kdim=4, vdim=6)
    q, k, v = torch.randn(2, 3, 8, requires_grad=True), torch.randn(2, 5, 4), torch.randn(2, 5, 6)
    m(q, k, v)[0].sum().backward()
    assert q.grad is not None and q.grad.abs().sum() > 0
    for name, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_dropout_only_in_training():
    m = MultiHeadAttention(8, 2, dropout=0.5)
    x = torch.randn(2, 6, 8)
    m.eval()
    a, b = m(x, x, x)[0], m(x, x, x)[0]
    assert torch.equal(a, b)
    m.train()
    torch.manual_seed(0)
    assert not torch.allclose(m(x, x, x)[0], a)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: MultiHeadAttention(10, 3), r"embed_dim must be divisible by num_heads.*embed_dim=10, num_heads=3"),
        (
            lambda: MultiHeadAttention(8, 2)(torch.randn(3, 8), torch.randn(3, 8), torch.randn(3, 8)),
            r"query must have exactly 3 dimensions \(B, T, E\); got shape \(3, 8\)",
        ),
        (
            lambda: MultiHeadAttention(8, 2)(torch.randn(2, 3, 8), torch.randn(2, 3, 8).double(), torch.randn(2, 3, 8)),
            r"expected one dtype for query, key, value; got query: torch.float32, key: torch.float64",
        ),
        (
            lambda: MultiHeadAttention(8, 2)(torch.randn(2, 3, 8), torch.randn(2, 4, 8), torch.randn(2, 5, 8)),
            r"value must have shape \(2, 4, 8\).*got \(2, 5, 8\)",
        ),
        (
            lambda: MultiHeadAttention(8, 2, kdim=5)(torch.randn(2, 3, 8), torch.randn(2, 4, 8), torch.randn(2, 4, 8)),
            r"key must have shape \(2, 4, 5\).*got \(2, 4, 8\)",
        ),
        (
            lambda: MultiHeadAttention(8, 2)(
                torch.randn(2, 3, 8),
                torch.randn(2, 4, 8),
                torch.randn(2, 4, 8),
                key_padding_mask=torch.ones(2, 3, dtype=torch.bool),
            ),
            r"key_padding_mask must have shape \(B, S\) = \(2, 4\).*got \(2, 3\)",
        ),
        (
            lambda: MultiHeadAttention(8, 2)(
                torch.randn(2, 3, 8),
                torch.randn(2, 4, 8),
                torch.randn(2, 4, 8),
                attn_mask=torch.ones(4, 3, dtype=torch.bool),
            ),
            r"attn_mask must have shape \(T, S\) = \(3, 4\).*got \(4, 3\)",
        ),
        (
            lambda: MultiHeadAttention(8, 2)(
                torch.randn(2, 3, 8),
                torch.randn(2, 3, 8),
                torch.randn(2, 3, 8),
                attn_mask=torch.ones(3, 3, dtype=torch.long),
            ),
            r"attn_mask must be torch.bool .* got dtype torch.int64",
        ),
        (
            lambda: MultiHeadAttention(8, 2).load_torch_weights(nn.MultiheadAttention(8, 4)),
            r"sizes \(embed_dim, num_heads, kdim, vdim, bias\) must match: expected \(8, 2, 8, 8, True\), got \(8, 4",
        ),
    ],
    ids=["divisible", "rank", "dtype", "value_len", "kdim", "padding_shape", "attn_shape", "mask_dtype", "load"],
)
def test_bad_input_raises_clear_error(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("kdim,vdim", [(None, None), (6, 10)])
def test_load_torch_weights_both_layouts(kdim, vdim):
    torch.manual_seed(1)
    reference = nn.MultiheadAttention(8, 2, batch_first=True, kdim=kdim, vdim=vdim, bias=False).eval()
    assert (reference.in_proj_weight is None) == (kdim is not None)  # the two layouts of torch
    ours = MultiHeadAttention(8, 2, kdim=kdim, vdim=vdim, bias=False).load_torch_weights(reference).eval()
    q = torch.randn(2, 3, 8)
    k, v = torch.randn(2, 4, kdim or 8), torch.randn(2, 4, vdim or 8)
    assert_close(ours(q, k, v)[0], reference(q, k, v)[0], TOL, "output")
