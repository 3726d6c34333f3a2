"""attnlib.transformer.layers: torch parity, pre/post-norm shapes, padding invariance, causality, KV cache."""

from __future__ import annotations

import pytest
import torch
from conftest import assert_close
from torch import nn

from attnlib.functional import lengths_to_mask
from attnlib.record import record_attention
from attnlib.transformer.layers import KVCache, TransformerDecoderLayer, TransformerEncoderLayer

D, H, FF = 16, 4, 32


def _copy_from_torch(ours: nn.Module, theirs: nn.Module) -> None:
    """Same submodule names: copy linear/norm weights, and attention through load_torch_weights."""
    with torch.no_grad():
        for name, module in theirs.named_children():
            if isinstance(module, nn.MultiheadAttention):
                getattr(ours, name).load_torch_weights(module)
            elif isinstance(module, (nn.Linear, nn.LayerNorm)):
                getattr(ours, name).load_state_dict(module.state_dict())


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_layer_matches_torch(norm_first):
    torch.manual_seed(0)
    theirs = nn.TransformerEncoderLayer(D, H, FF, dropout=0.0, batch_first=True, norm_first=norm_first).eval()
    ours = TransformerEncoderLayer(D, H, FF, dropout=0.0, norm_first=norm_first).eval()
    _copy_from_torch(ours, theirs)
    x = torch.randn(3, 6, D)
    real = lengths_to_mask(torch.tensor([6, 4, 1]), 6)  # (B, T)
    out = ours(x, key_padding_mask=real)
    expected = theirs(x, src_key_padding_mask=~real)
    assert_close(out[real], expected[real], 1e-5, "encoder layer (real positions)")


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer_matches_torch(norm_first):
    torch.manual_seed(0)
    theirs = nn.TransformerDecoderLayer(D, H, FF, dropout=0.0, batch_first=True, norm_first=norm_first).eval()
    ours = TransformerDecoderLayer(D, H, FF, dropout=0.0, norm_first=norm_first).eval()
    _copy_from_torch(ours, theirs)
    x, memory = torch.randn(2, 5, D), torch.randn(2, 7, D)
    real = lengths_to_mask(torch.tensor([7, 3]), 7)
    causal = nn.Transformer.generate_square_subsequent_mask(5)  # float, -inf above the diagonal
    out = ours(x, memory, causal=True, memory_key_padding_mask=real)
    expected = theirs(x, memory, tgt_mask=causal, memory_key_padding_mask=~real)
    assert_close(out, expected, 1e-5, "decoder layer")


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("B,T,S", [(1, 1, 1), (2, 5, 3), (3, 4, 9)])
def test_shapes_and_gradients(norm_first, B, T, S):
    enc = TransformerEncoderLayer(D, H, FF, norm_first=norm_first)
    dec = TransformerDecoderLayer(D, H, FF, norm_first=norm_first)
    memory = enc(torch.randn(B, S, D))
    out = dec(torch.randn(B, T, D), memory)
    assert memory.shape == (B, S, D) and out.shape == (B, T, D)
    out.sum().backward()
    for name, p in list(enc.named_parameters()) + list(dec.named_parameters()):
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_padding_invariance(norm_first):
    torch.manual_seed(1)
    layer = TransformerEncoderLayer(D, H, FF, norm_first=norm_first).eval()
    x = torch.randn(2, 6, D)
    real = lengths_to_mask(torch.tensor([6, 3]), 6)
    changed = x.clone()
    changed[1, 3:] = torch.randn(3, D) * 10  # rewrite the padding
    a, b = layer(x, key_padding_mask=real), layer(changed, key_padding_mask=real)
    assert_close(a[real], b[real], 1e-5, "real positions moved when padding changed")
    assert not torch.allclose(layer(changed)[1, :3], a[1, :3])  # without the mask they would move


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_causal_and_memory_padding(norm_first):
    torch.manual_seed(2)
    layer = TransformerDecoderLayer(D, H, FF, norm_first=norm_first).eval()
    x, memory = torch.randn(2, 6, D), torch.randn(2, 5, D)
    real = lengths_to_mask(torch.tensor([5, 2]), 5)
    out = layer(x, memory, memory_key_padding_mask=real)
    future = x.clone()
    future[:, 4:] = torch.randn(2, 2, D)  # change the last two target tokens
    assert_close(layer(future, memory, memory_key_padding_mask=real)[:, :4], out[:, :4], 1e-5, "past saw the future")
    assert not torch.allclose(layer(future, memory, causal=False, memory_key_padding_mask=real)[:, :4], out[:, :4])
    padded = memory.clone()
    padded[1, 2:] = torch.randn(3, D)
    assert_close(layer(x, padded, memory_key_padding_mask=real), out, 1e-5, "padding of the memory leaked")


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("cross,rotary", [(True, False), (False, False), (False, True), (True, True)])
def test_cached_steps_match_full_forward(norm_first, cross, rotary):
    torch.manual_seed(3)
    layer = TransformerDecoderLayer(D, H, FF, norm_first=norm_first, cross_attention=cross, rotary=rotary).eval()
    x = torch.randn(2, 7, D)
    memory = torch.randn(2, 4, D) if cross else None
    real = lengths_to_mask(torch.tensor([4, 2]), 4) if cross else None
    full = layer(x, memory, memory_key_padding_mask=real)
    cache = KVCache(1)
    pieces = [layer(x[:, :3], memory, memory_key_padding_mask=real, cache=cache[0])]  # a prompt of 3
    for t in range(3, 7):
        pieces.append(layer(x[:, t : t + 1], memory, memory_key_padding_mask=real, cache=cache[0]))
    assert cache.length == 7 and cache[0].keys.shape == (2, H, 7, D // H)
    assert_close(torch.cat(pieces, dim=1), full, 1e-5, "cached vs full")


def test_cache_state_round_trip():
    cache = KVCache(2)
    cache[0].append(torch.randn(1, 2, 3, 4), torch.randn(1, 2, 3, 4))
    again = KVCache.from_state(cache.to_state())
    assert again.length == 3 and len(again) == 2 and torch.equal(again[0].keys, cache[0].keys)
    assert again[1].keys is None


def test_decoder_returns_cross_weights_and_records_maps():
    layer = TransformerDecoderLayer(D, H, FF).eval()
    x, memory = torch.randn(2, 3, D), torch.randn(2, 5, D)
    real = lengths_to_mask(torch.tensor([5, 2]), 5)
    with record_attention(layer) as maps:
        out, weights = layer(x, memory, memory_key_padding_mask=real, need_weights=True)
    assert weights.shape == (2, 3, 5)
    assert bool((weights[1, :, 2:] == 0).all())
    assert maps.last("self_attn").shape == (2, H, 3, 3)
    assert maps.last("multihead_attn").shape == (2, H, 3, 5)
    assert_close(maps.last("multihead_attn").mean(1), weights, 1e-6, "recorded vs returned")
    assert bool((maps.last("self_attn")[0, :, 0, 1:] == 0).all())  # causal: token 0 sees only itself


def test_decoder_without_memory_raises():
    with pytest.raises(ValueError, match=r"memory \(B, S, D\) is required"):
        TransformerDecoderLayer(D, H, FF)(torch.randn(1, 2, D))
