"""attnlib.transformer.sink_cache: sizes, contents, cache positions with RoPE, equality with the full
cache and with the dense sink/sliding-window masks, streaming generation, errors."""

from __future__ import annotations

import pytest
import torch
from conftest import assert_close

from attnlib.efficient.local import sliding_window_mask
from attnlib.train import seed_everything
from attnlib.transformer.layers import TransformerDecoderLayer
from attnlib.transformer.lm import DecoderOnlyLM, LMConfig
from attnlib.transformer.positional import RotaryEmbedding
from attnlib.transformer.sink_cache import (
    SinkKVCache,
    SinkLayerCache,
    generate_streaming,
    sink_window_mask,
    stream_logits,
)

TOL = 1e-5


def _model(positional: str, seed: int = 0, **kwargs) -> DecoderOnlyLM:
    seed_everything(seed)
    sizes = dict(vocab_size=23, d_model=32, num_heads=4, num_layers=2, d_ff=64, max_len=40)
    sizes.update(kwargs)
    return DecoderOnlyLM(LMConfig(positional=positional, **sizes)).eval()


def _layer(seed: int, **kwargs) -> TransformerDecoderLayer:
    torch.manual_seed(seed)
    return TransformerDecoderLayer(16, 4, 32, dropout=0.0, norm_first=True, cross_attention=False, **kwargs).eval()


def _position_keys(start: int, T: int) -> torch.Tensor:
    """``(1, 2, T, 4)`` keys whose every entry is the token's position in the stream."""
    return torch.arange(start, start + T, dtype=torch.float32)[None, None, :, None].expand(1, 2, T, 4)


@pytest.mark.parametrize("num_sinks,window", [(4, 6), (0, 5), (2, 0), (1, 1)])
def test_size_and_contents(num_sinks, window):
    cache = SinkLayerCache(num_sinks, window)
    seen = 0
    for T in [3] + [1] * 20:  # a short prompt, then one token at a time
        k = _position_keys(seen, T)
        attend_keys, attend_values = cache.append(k, k + 0.5)
        seen += T
        assert attend_keys.shape[2] <= num_sinks + window + T  # what the new tokens attend to
        assert cache.length <= num_sinks + window == cache.capacity
        expected = list(range(min(num_sinks, seen))) + list(range(max(num_sinks, seen - window), seen))
        assert cache.positions.tolist() == expected
        assert cache.keys is not None and cache.values is not None
        assert cache.keys[0, 0, :, 0].tolist() == expected  # the right tokens' keys
        assert cache.values[0, 1, :, 3].tolist() == [p + 0.5 for p in expected]
    assert cache.seen == seen == 23


def test_window_at_least_the_length_is_the_full_cache():
    cache = SinkLayerCache(2, 30)
    for t in range(20):
        keys, _ = cache.append(_position_keys(t, 1), _position_keys(t, 1))
    assert keys[0, 0, :, 0].tolist() == list(range(20)) and cache.length == 20


@pytest.mark.parametrize("positional", ["sinusoidal", "rope", "alibi"])
def test_large_cache_equals_full_forward(positional):
    model = _model(positional)
    tokens = torch.randint(0, 23, (2, 25), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        streamed = stream_logits(model, tokens, SinkKVCache.for_model(model, num_sinks=4, window=30))
        assert_close(streamed, model(tokens), TOL, "sink cache that evicts nothing vs full forward")
    ours, ours_logits = generate_streaming(model, tokens[:, :5], 15, num_sinks=4, window=30)
    plain, plain_logits = model.generate(tokens[:, :5], 15)
    assert torch.equal(ours, plain)
    assert_close(ours_logits, plain_logits, TOL, "generated logits")


@pytest.mark.parametrize("kind", ["none", "rope", "alibi"])
def test_rolling_window_equals_sliding_window_mask(kind):
    """num_sinks = 0: each token sees itself and the `window` before it. RoPE and ALiBi depend on
    relative positions only, so cache positions give the same scores as positions in the text."""
    window, T = 4, 14
    layer = _layer(1, rotary=kind == "rope", alibi=kind == "alibi")
    x = torch.randn(2, T, 16, generator=torch.Generator().manual_seed(2))
    full = layer(x, self_mask=sliding_window_mask(T, window, causal=True), causal=True)  # (B, T, D)
    rotary = layer.rotary if kind == "rope" else None
    cache = SinkLayerCache(0, window, rotary)
    steps = [layer(x[:, :3], cache=cache)] + [layer(x[:, t : t + 1], cache=cache) for t in range(3, T)]
    assert_close(torch.cat(steps, dim=1), full, TOL, "rolling cache vs dense sliding-window mask")


def test_sinks_equal_dense_sink_window_mask_without_positions():
    num_sinks, window, T = 2, 3, 12
    layer = _layer(3)
    x = torch.randn(2, T, 16, generator=torch.Generator().manual_seed(4))
    full = layer(x, self_mask=sink_window_mask(T, num_sinks, window), causal=True)
    cache = SinkLayerCache(num_sinks, window)
    steps = [layer(x[:, t : t + 1], cache=cache) for t in range(T)]
    assert_close(torch.cat(steps, dim=1), full, TOL, "sink cache vs dense sink mask")
    plain = layer(x, causal=True)
    assert (plain[:, -1] - full[:, -1]).abs().max() > 1e-3  # the eviction changed something


def test_sink_window_mask_by_hand():
    mask = sink_window_mask(6, num_sinks=1, window=2)
    expected = [
        [1, 0, 0, 0, 0, 0],
        [1, 1, 0, 0, 0, 0],
        [1, 1, 1, 0, 0, 0],
        [1, 1, 1, 1, 0, 0],
        [1, 0, 1, 1, 1, 0],
        [1, 0, 0, 1, 1, 1],
    ]
    assert mask.int().tolist() == expected
    assert torch.equal(sink_window_mask(7, 0, 3), sliding_window_mask(7, 3, causal=True))


def test_rope_keys_sit_at_cache_positions():
    """With RoPE the cache rotates every kept key by its position in the cache (StreamingLLM)."""
    rotary = RotaryEmbedding(4)
    cache = SinkLayerCache(2, 3, rotary)
    raw = torch.randn(1, 2, 12, 4, generator=torch.Generator().manual_seed(0))
    for t in range(12):
        n = cache.length
        keys, _ = cache.append(rotary(raw[:, :, t : t + 1], n), raw[:, :, t : t + 1])  # as the layer does
        kept = list(range(t + 1)) if t <= 5 else [0, 1] + list(range(t - 3, t + 1))  # attended to at step t
        assert_close(keys, rotary(raw[:, :, kept], 0), TOL, f"step {t}")


def test_streaming_generation_beyond_max_len():
    model = _model("rope", num_kv_heads=2)
    prompt = torch.randint(0, 23, (2, 12), generator=torch.Generator().manual_seed(1))
    tokens, logits = generate_streaming(model, prompt, 50, num_sinks=2, window=8)  # 62 > max_len = 40
    assert tokens.shape == (2, 62) and logits.shape == (2, 50, 23)
    assert torch.equal(tokens[:, :12], prompt)
    cache = SinkKVCache.for_model(model, num_sinks=2, window=8)
    with torch.no_grad():
        stream_logits(model, tokens, cache)
    assert cache.length == 10 and cache.seen == 62
    assert cache[0].keys is not None and cache[0].keys.shape == (2, 2, 10, 8)  # G = 2 key/value heads
    sampled, _ = generate_streaming(model, prompt, 5, 2, 8, greedy=False, generator=torch.Generator().manual_seed(0))
    again, _ = generate_streaming(model, prompt, 5, 2, 8, greedy=False, generator=torch.Generator().manual_seed(0))
    assert torch.equal(sampled, again)


def test_bad_input():
    with pytest.raises(ValueError, match=r"keep at least one token; got num_sinks=0, window=0"):
        SinkLayerCache(0, 0)
    with pytest.raises(ValueError, match=r"got num_sinks=-1, window=3"):
        SinkKVCache(2, -1, 3)
    cache = SinkLayerCache(1, 2)
    with pytest.raises(ValueError, match=r"takes at most 4 tokens at once .* got 5"):
        cache.append(torch.zeros(1, 2, 5, 4), torch.zeros(1, 2, 5, 4))
    cache.append(torch.zeros(1, 2, 2, 4), torch.zeros(1, 2, 2, 4))
    with pytest.raises(ValueError, match=r"new keys must have shape \(B, G, T_new, d\) = \(\*, 1, 2, T_new, 4\)"):
        cache.append(torch.zeros(1, 3, 1, 4), torch.zeros(1, 3, 1, 4))
    model = _model("rope")
    with pytest.raises(ValueError, match=r"num_sinks \+ window \+ 1 must be at most the model's max_len = 40"):
        SinkKVCache.for_model(model, 4, 36)
    with pytest.raises(ValueError, match="cache must be a SinkKVCache; got KVCache"):
        stream_logits(model, torch.zeros(1, 3, dtype=torch.long), model.new_cache())
    with pytest.raises(ValueError, match=r"prompt must hold at least one token"):
        generate_streaming(model, torch.zeros(1, 0, dtype=torch.long), 3, 2, 8)
    with pytest.raises(NotImplementedError, match="beam search"):
        SinkKVCache(1, 1, 1).to_state()
