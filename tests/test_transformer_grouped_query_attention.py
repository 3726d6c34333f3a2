"""attnlib.transformer.grouped_query_attention: equals MHA when G = H, mean-pooling by hand,
cache sizes, cached decoding, torch interop, recording, errors."""

from __future__ import annotations

import pytest
import torch
from conftest import assert_close, stable_seed
from torch import nn

from attnlib.masks import lengths_to_mask
from attnlib.record import record_attention
from attnlib.transformer.grouped_query_attention import GQA, GroupedQueryAttention, kv_cache_numel, mha_to_gqa
from attnlib.transformer.layers import LayerCache, TransformerDecoderLayer
from attnlib.transformer.mha import MultiHeadAttention

TOL = 1e-5


def _mha(E: int, H: int, seed: int, kdim: int | None = None, vdim: int | None = None) -> MultiHeadAttention:
    torch.manual_seed(seed)
    mha = MultiHeadAttention(E, H, kdim=kdim, vdim=vdim).eval()
    with torch.no_grad():  # non-zero biases, so that a bias mix-up shows
        for p in mha.parameters():
            if p.dim() == 1:
                p.normal_()
    return mha


def _call(module: nn.Module, query, key, value, kind: str, need_weights: bool, average: bool, gen):
    B, T, S = query.shape[0], query.shape[1], key.shape[1]
    padding = lengths_to_mask(torch.randint(1, S + 1, (B,), generator=gen), S)  # (B, S)
    attn = torch.randn(T, S, generator=gen)  # a float mask
    kwargs = {
        "none": {},
        "padding": {"key_padding_mask": padding},
        "causal": {"is_causal": True},
        "padding_causal_float": {"key_padding_mask": padding, "is_causal": True, "attn_mask": attn},
    }[kind]
    return module(query, key, value, need_weights=need_weights, average_attn_weights=average, **kwargs)


@pytest.mark.parametrize("need_weights,average", [(False, True), (True, True), (True, False)])
@pytest.mark.parametrize("kind", ["none", "padding", "causal", "padding_causal_float"])
@pytest.mark.parametrize("B,T,S,E,H,kdim,vdim", [(2, 5, 5, 16, 4, 16, 16), (3, 4, 7, 12, 3, 10, 7)])
def test_equals_mha_when_kv_heads_equal_heads(B, T, S, E, H, kdim, vdim, kind, need_weights, average):
    mha = _mha(E, H, seed=stable_seed(B, T, E), kdim=kdim, vdim=vdim)
    gqa = GroupedQueryAttention(E, H, num_kv_heads=H, kdim=kdim, vdim=vdim).eval()
    gqa.load_state_dict(mha.state_dict())  # the same parameters, the same names and shapes
    gen = torch.Generator().manual_seed(stable_seed(kind, B))
    query, key = torch.randn(B, T, E, generator=gen), torch.randn(B, S, kdim, generator=gen)  # (B, T, E), (B, S, kdim)
    value = torch.randn(B, S, vdim, generator=gen)  # (B, S, vdim)
    ours = _call(gqa, query, key, value, kind, need_weights, average, torch.Generator().manual_seed(1))
    ref = _call(mha, query, key, value, kind, need_weights, average, torch.Generator().manual_seed(1))
    assert_close(ours[0], ref[0], TOL, "output")
    if need_weights:
        assert_close(ours[1], ref[1], TOL, "weights")
    else:
        assert ours[1] is None and ref[1] is None


def test_from_mha_with_all_heads_is_exact():
    mha = _mha(16, 4, seed=0)
    gqa = mha_to_gqa(mha, 4)
    for name, p in mha.named_parameters():
        assert torch.equal(gqa.get_parameter(name), p), name
    x = torch.randn(2, 6, 16, generator=torch.Generator().manual_seed(0))
    assert torch.equal(gqa(x, x, x, is_causal=True)[0], mha(x, x, x, is_causal=True)[0])


def test_mean_pooling_by_hand():
    E, H, G, d = 8, 4, 2, 2
    mha = MultiHeadAttention(E, H)
    with torch.no_grad():
        for name in ("k_proj", "v_proj"):
            proj = getattr(mha, name)
            proj.weight.copy_(torch.arange(E * E, dtype=torch.float32).view(E, E))  # row r = r E .. r E + E - 1
            proj.bias.copy_(torch.arange(E, dtype=torch.float32) * 10)
    gqa = GroupedQueryAttention.from_mha(mha, G)
    # Group 0 averages heads 0 and 1 (rows 0,1 and 2,3), group 1 heads 2 and 3 (rows 4,5 and 6,7).
    expected_rows = [(0 + 2) / 2, (1 + 3) / 2, (4 + 6) / 2, (5 + 7) / 2]  # the row whose values the mean equals
    expected_w = torch.stack([torch.arange(E, dtype=torch.float32) + r * E for r in expected_rows])  # (G d, E)
    expected_b = torch.tensor(expected_rows) * 10  # (G d,)
    for name in ("k_proj", "v_proj"):
        proj = getattr(gqa, name)
        assert proj.weight.shape == (G * d, E)
        assert torch.equal(proj.weight, expected_w), name
        assert torch.equal(proj.bias, expected_b), name
    assert torch.equal(gqa.q_proj.weight, mha.q_proj.weight) and torch.equal(gqa.out_proj.weight, mha.out_proj.weight)


@pytest.mark.parametrize("G", [1, 2, 4])
def test_output_equals_mha_with_shared_heads(G):
    """Query head h uses key/value group h // (H / G): an MHA whose heads in a group all carry the
    group's pooled projection computes the same numbers."""
    E, H, d = 16, 4, 4
    mha = _mha(E, H, seed=G)
    gqa = GroupedQueryAttention.from_mha(mha, G)
    shared = _mha(E, H, seed=G)
    with torch.no_grad():
        for name in ("k_proj", "v_proj"):
            pooled = getattr(gqa, name)
            getattr(shared, name).weight.copy_(pooled.weight.view(G, 1, d, E).expand(G, H // G, d, E).reshape(E, E))
            getattr(shared, name).bias.copy_(pooled.bias.view(G, 1, d).expand(G, H // G, d).reshape(E))
    x = torch.randn(3, 5, E, generator=torch.Generator().manual_seed(G))
    out, w = gqa(x, x, x, is_causal=True, need_weights=True, average_attn_weights=False)
    ref, ref_w = shared(x, x, x, is_causal=True, need_weights=True, average_attn_weights=False)
    assert_close(out, ref, TOL, "output")
    assert_close(w, ref_w, TOL, "weights (B, H, T, S)")
    if G < H:  # pooling changed something: the original MHA differs
        assert (mha(x, x, x, is_causal=True)[0] - out).abs().max() > 1e-3


@pytest.mark.parametrize("G", [1, 2, 4])
def test_cache_holds_kv_heads_only(G):
    B, T, E, H = 2, 7, 16, 4
    d = E // H
    layer = TransformerDecoderLayer(E, H, 32, dropout=0.0, norm_first=True, cross_attention=False, num_kv_heads=G)
    cache = LayerCache()
    layer(torch.randn(B, T, E), cache=cache)
    assert cache.keys is not None and cache.values is not None
    assert cache.keys.shape == (B, G, T, d) and cache.values.shape == (B, G, T, d)
    attn = layer.self_attn
    assert isinstance(attn, GroupedQueryAttention)
    held = cache.keys.numel() + cache.values.numel()
    assert attn.kv_cache_numel(T, batch_size=B) == held == 2 * B * G * T * d
    assert attn.kv_cache_bytes(T, batch_size=B) == 4 * held  # float32
    assert attn.kv_cache_bytes(T, batch_size=B, dtype=torch.bfloat16) == 2 * held


def test_kv_cache_numel_scales_with_kv_heads():
    # Sizes of a 7B Llama-style model: 32 layers, 32 heads of 128 features.
    mha = kv_cache_numel(num_layers=32, num_kv_heads=32, head_dim=128, seq_len=4096)
    assert mha == 2 * 32 * 32 * 4096 * 128
    assert [kv_cache_numel(32, g, 128, 4096) * 32 // g for g in (1, 4, 8, 32)] == [mha] * 4
    assert kv_cache_numel(32, 8, 128, 4096, batch_size=3) == 3 * kv_cache_numel(32, 8, 128, 4096)
    with pytest.raises(ValueError, match="sizes must be >= 0"):
        kv_cache_numel(32, 8, 128, -1)


@pytest.mark.parametrize("rotary", [False, True])
@pytest.mark.parametrize("G", [1, 2])
def test_cached_decoding_equals_full_causal_forward(G, rotary):
    torch.manual_seed(G)
    B, T, E, H = 2, 9, 16, 4
    layer = TransformerDecoderLayer(
        E, H, 32, dropout=0.0, norm_first=True, cross_attention=False, rotary=rotary, num_kv_heads=G
    ).eval()
    x = torch.randn(B, T, E, generator=torch.Generator().manual_seed(3))
    full = layer(x, causal=True)  # (B, T, E)
    cache = LayerCache()
    steps = [layer(x[:, :3], causal=True, cache=cache)]  # a 3-token prompt, then one token at a time
    steps += [layer(x[:, t : t + 1], causal=True, cache=cache) for t in range(3, T)]
    assert_close(torch.cat(steps, dim=1), full, TOL, "cached vs full")
    assert cache.keys is not None and cache.keys.shape == (B, G, T, E // H)


def test_torch_interop_and_recording():
    torch.manual_seed(0)
    reference = nn.MultiheadAttention(12, 4, batch_first=True).eval()
    x = torch.randn(2, 5, 12)
    ours = GroupedQueryAttention.from_torch(reference).eval()
    assert_close(ours(x, x, x)[0], reference(x, x, x, need_weights=False)[0], TOL, "torch parity")
    pooled = GroupedQueryAttention.from_torch(reference, num_kv_heads=2)
    again = GroupedQueryAttention(12, 4, 2).load_torch_weights(reference)
    for name, p in pooled.named_parameters():
        assert torch.equal(again.get_parameter(name), p), name
    assert pooled.k_proj.weight.shape == (6, 12)
    with record_attention(pooled) as maps:
        pooled(x, x, x, is_causal=True)
    w = maps.last("")
    assert w.shape == (2, 4, 5, 5) and bool((w.triu(1) == 0).all())
    assert GQA is GroupedQueryAttention and "num_kv_heads=2" in repr(pooled)


def test_fully_masked_row_gives_bias_not_nan():
    gqa = GroupedQueryAttention(8, 4, 2)
    x = torch.randn(2, 3, 8)
    padding = torch.tensor([[True, True, True], [False, False, False]])
    out, w = gqa(x, x, x, key_padding_mask=padding, need_weights=True)
    assert not out.isnan().any() and bool((w[1] == 0).all())
    assert_close(out[1], gqa.out_proj.bias.expand(3, 8), TOL, "blocked rows return the output bias")


def test_bad_input():
    with pytest.raises(
        ValueError, match=r"num_kv_heads must be a positive divisor of num_heads .* num_heads=4, num_kv_heads=3"
    ):
        GroupedQueryAttention(16, 4, 3)
    with pytest.raises(ValueError, match=r"num_heads=4, num_kv_heads=0"):
        GroupedQueryAttention(16, 4, 0)
    with pytest.raises(ValueError, match="embed_dim must be divisible by num_heads"):
        GroupedQueryAttention(10, 4, 2)
    with pytest.raises(ValueError, match=r"num_heads=4, num_kv_heads=3"):
        mha_to_gqa(_mha(16, 4, seed=0), 3)
    with pytest.raises(ValueError, match="mha must be a MultiHeadAttention"):
        GroupedQueryAttention.from_mha(GroupedQueryAttention(16, 4, 2), 1)
    gqa = GroupedQueryAttention(16, 4, 2)
    q = torch.randn(1, 4, 3, 4)
    with pytest.raises(ValueError, match=r"k must have shape \(B, G=2, S, d=4\); got \(1, 4, 3, 4\)"):
        gqa.attend(q, q, q)
    x = torch.randn(2, 3, 16)
    with pytest.raises(ValueError, match=r"key must have shape \(2, 3, 16\)"):
        gqa(x, torch.randn(2, 3, 8), x)
    with pytest.raises(ValueError, match=r"attn_mask must have shape"):
        gqa(x, x, x, attn_mask=torch.ones(2, 2, 3, 3, dtype=torch.bool))
