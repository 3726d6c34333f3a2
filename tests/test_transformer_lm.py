"""attnlib.transformer.lm: cached generation equals uncached, determinism, a tiny model memorises a sequence."""

from __future__ import annotations

import pytest
import torch

from attnlib.record import record_attention
from attnlib.train import seed_everything
from attnlib.transformer.grouped_query_attention import GroupedQueryAttention
from attnlib.transformer.lm import DecoderOnlyLM, LMConfig

KINDS = ["sinusoidal", "learned", "rope", "alibi"]


def _model(positional: str, seed: int = 0, **kwargs) -> DecoderOnlyLM:
    seed_everything(seed)
    sizes = dict(vocab_size=23, d_model=32, num_heads=4, num_layers=2, d_ff=64, max_len=40)
    sizes.update(kwargs)
    return DecoderOnlyLM(LMConfig(positional=positional, **sizes)).eval()


@pytest.mark.parametrize("positional", KINDS)
@pytest.mark.parametrize("B,T0,N", [(1, 1, 12), (3, 5, 20)])
def test_cache_gives_same_tokens_and_logits(positional, B, T0, N):
    model = _model(positional)
    prompt = torch.randint(0, 23, (B, T0), generator=torch.Generator().manual_seed(T0))
    cached, cached_logits = model.generate(prompt, N, use_cache=True)
    plain, plain_logits = model.generate(prompt, N, use_cache=False)
    assert cached.shape == (B, T0 + N) and cached_logits.shape == (B, N, 23)
    assert torch.equal(cached, plain)
    err = (cached_logits - plain_logits).abs().max().item()
    assert err <= 1e-5, f"cached vs uncached logits: max |error| = {err:.2e}"
    assert torch.equal(cached[:, :T0], prompt)


@pytest.mark.parametrize("positional", KINDS)
def test_sampling_with_cache_matches_and_is_seeded(positional):
    model = _model(positional)
    prompt = torch.zeros(2, 2, dtype=torch.long)
    runs = [
        model.generate(
            prompt, 15, use_cache=c, greedy=False, temperature=1.5, generator=torch.Generator().manual_seed(5)
        )[0]
        for c in (True, False, True)
    ]
    assert torch.equal(runs[0], runs[1]) and torch.equal(runs[0], runs[2])


def test_determinism_under_seed():
    tokens = torch.randint(0, 23, (4, 12), generator=torch.Generator().manual_seed(0))
    a, b, c = _model("rope", 7), _model("rope", 7), _model("rope", 8)
    assert torch.equal(a.loss(tokens), b.loss(tokens))
    assert not torch.equal(a.loss(tokens), c.loss(tokens))


@pytest.mark.parametrize("positional", KINDS)
def test_future_tokens_do_not_change_past_logits(positional):
    model = _model(positional)
    x = torch.randint(0, 23, (2, 10), generator=torch.Generator().manual_seed(1))
    y = x.clone()
    y[:, 6:] = (y[:, 6:] + 1) % 23
    assert torch.allclose(model(x)[:, :6], model(y)[:, :6], atol=1e-6)
    assert not torch.allclose(model(x)[:, 6:], model(y)[:, 6:])


@pytest.mark.parametrize("positional", KINDS)
def test_tiny_model_memorises_a_sequence(positional):
    seed_everything(0)
    text = "attention is all you need. "
    chars = sorted(set(text))
    ids = torch.tensor([[chars.index(c) for c in text * 2]])  # (1, 54)
    # ALiBi's steepest slope is 2^(-8/H): with 2 heads (1/16, 1/256) position is too faint a
    # signal for 150 steps; with 8 (1/2 .. 1/256) it is not.
    heads = 8 if positional == "alibi" else 2
    model = DecoderOnlyLM(
        LMConfig(len(chars), d_model=32, num_heads=heads, num_layers=2, d_ff=64, max_len=64, positional=positional)
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = model.loss(ids).item()
    for _ in range(150):
        loss = model.loss(ids)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.1 * first, f"loss {first:.3f} -> {loss.item():.3f}"
    tokens, _ = model.generate(ids[:, :10], 30)
    assert torch.equal(tokens, ids[:, :40]), "".join(chars[i] for i in tokens[0])


def test_recorded_maps_are_causal():
    model = _model("sinusoidal")
    with record_attention(model) as maps:
        model(torch.randint(0, 23, (2, 6)))
    assert maps.names() == ["layers.0.self_attn", "layers.1.self_attn"]
    w = maps.last("layers.1.self_attn")
    assert w.shape == (2, 4, 6, 6)
    assert bool((w.triu(1) == 0).all())


def test_bad_input():
    with pytest.raises(
        ValueError, match=r"positional must be one of \('sinusoidal', 'learned', 'rope', 'alibi'\); got 'nope'"
    ):
        LMConfig(10, positional="nope")
    with pytest.raises(
        ValueError, match=r"num_kv_heads must be a positive divisor of num_heads; got num_heads=4, num_kv_heads=3"
    ):
        LMConfig(10, num_kv_heads=3)
    model = _model("rope")
    with pytest.raises(ValueError, match=r"at most max_len = 40 positions; got 0 cached \+ tokens of shape \(1, 41\)"):
        model(torch.zeros(1, 41, dtype=torch.long))
    with pytest.raises(ValueError, match=r"tokens must have exactly 2 dimensions \(B, T\); got shape \(5,\)"):
        model(torch.zeros(5, dtype=torch.long))


@pytest.mark.parametrize("positional", ["rope", "alibi"])
@pytest.mark.parametrize("G", [1, 2])
def test_grouped_query_lm(G, positional):
    """Fewer key/value heads: the cache holds G heads, and cached generation still equals uncached."""
    model = _model(positional, num_kv_heads=G)
    assert all(isinstance(layer.self_attn, GroupedQueryAttention) for layer in model.layers)
    prompt = torch.randint(0, 23, (2, 4), generator=torch.Generator().manual_seed(G))
    cached, cached_logits = model.generate(prompt, 10, use_cache=True)
    plain, plain_logits = model.generate(prompt, 10, use_cache=False)
    assert torch.equal(cached, plain)
    err = (cached_logits - plain_logits).abs().max().item()
    assert err <= 1e-5, f"cached vs uncached logits: max |error| = {err:.2e}"
    cache = model.new_cache()
    model(prompt, cache)
    assert cache[0].keys is not None and cache[0].keys.shape == (2, G, 4, 8)


def test_alibi_lm_has_no_position_vectors_and_is_biased():
    model = _model("alibi")
    assert model.positions is None and all(layer.alibi for layer in model.layers)
    x = torch.randint(0, 23, (1, 8), generator=torch.Generator().manual_seed(0))
    logits = model(x)
    for layer in model.layers:
        layer.alibi = False
    assert (model(x) - logits).abs().max() > 1e-4  # the bias changes the output
