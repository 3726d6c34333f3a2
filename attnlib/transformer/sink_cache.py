"""A bounded KV cache: attention sinks plus a sliding window (StreamingLLM).

Paper
-----
G. Xiao, Y. Tian, B. Chen, S. Han and M. Lewis, "Efficient streaming language models with
attention sinks", ICLR 2024, arXiv:2309.17453 (§3.2, §3.3).  A plain KV cache grows by one
token per step.  Keeping only the last ``W`` tokens (a rolling window, as in Longformer's
sliding window, Beltagy et al. 2020) bounds it, but the paper observes that language models
put a large share of their attention on the first few tokens whatever they say (the
"attention sinks"), and that the output degrades once those are evicted.  Keeping the first
few tokens as well restores it.

What the cache keeps
--------------------
:class:`SinkKVCache` ``(num_layers, num_sinks, window)`` holds, between steps, at most
``num_sinks + window`` tokens per layer: the first ``num_sinks`` tokens of the stream and
the last ``window`` ones.  A new token attends to those and to itself.  With
``num_sinks = 0`` it is a rolling window, and a token sees exactly the keys that
:func:`attnlib.efficient.local.sliding_window_mask` ``(T, window, causal=True)`` allows;
in general the keys that :func:`sink_window_mask` allows.  With ``num_sinks + window`` at
least the stream's length nothing is evicted and it is the plain
:class:`~attnlib.transformer.layers.KVCache` (all three tested).

Positions
---------
As in the paper, positions count *within the cache*, not in the original text: the cached
tokens have positions ``0 .. n-1`` and the new one ``n``, whatever was evicted in between.
The model therefore never meets a position beyond ``num_sinks + window``, however long the
stream.

* **RoPE** (:class:`~attnlib.transformer.positional.RotaryEmbedding`): the layer rotates the
  new keys by their cache position; the cache stores keys *un*-rotated and rotates all of
  them by their current cache position every step (pass the model's ``rotary``, as
  :meth:`SinkKVCache.for_model` does), so the distance from a query to a sink shrinks when
  tokens in between are evicted.
* **ALiBi** (:mod:`attnlib.transformer.alibi`): the bias is computed every step from the
  cache positions, so nothing needs storing.
* **Sinusoidal or learned** positions are added to the embeddings and so baked into the
  cached keys: a token keeps the position it had when it entered the cache, and once the
  cache is full every new token enters at position ``num_sinks + window``.  StreamingLLM is
  meant for relative positions (RoPE, ALiBi); with absolute ones the cache runs but the
  recent tokens lose their order.

A call may add several tokens at once only while nothing they need is evicted (at most
``num_sinks + window + 1`` tokens in all); :func:`stream_logits` feeds a sequence in pieces
that respect this, and :func:`generate_streaming` generates with it.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from .._checks import check_rank, shape_str
from ..masks import causal_mask
from .layers import KVCache, LayerCache
from .lm import DecoderOnlyLM, _check_generation, _next_token
from .positional import RotaryEmbedding, apply_rotary

__all__ = ["sink_window_mask", "SinkLayerCache", "SinkKVCache", "stream_logits", "generate_streaming"]


def _check_sizes(num_sinks: int, window: int) -> None:
    if num_sinks < 0 or window < 0 or num_sinks + window < 1:
        raise ValueError(
            f"num_sinks and window must be >= 0 and keep at least one token; got num_sinks={num_sinks}, window={window}"
        )


def sink_window_mask(T: int, num_sinks: int, window: int, *, device: Optional[torch.device] = None) -> Tensor:
    """Which keys a token sees under a sink cache, for a whole sequence at once.

    Query ``i`` may attend to key ``j`` when ``j <= i`` and either ``j < num_sinks`` (a sink)
    or ``i - j <= window`` (the window and the token itself).

    Returns:
        ``(T, T)`` bool, ``True`` = may attend.
    """
    _check_sizes(num_sinks, window)
    pos = torch.arange(T, device=device)
    recent = (pos[:, None] - pos[None, :]) <= window  # (T, T) i - j <= window
    sink = pos[None, :] < num_sinks  # (1, T)
    return causal_mask(T, device=device) & (recent | sink)  # (T, T)


class SinkLayerCache(LayerCache):
    """One layer's cache of at most ``num_sinks + window`` tokens (see the module docstring).

    Args:
        num_sinks: tokens kept from the start of the stream (the paper: 4).
        window: most recent tokens kept.
        rotary: the layer's rotary embedding, if it uses RoPE: keys are then stored un-rotated
            and rotated by their cache positions on every :meth:`append`.
    """

    def __init__(self, num_sinks: int, window: int, rotary: Optional[RotaryEmbedding] = None) -> None:
        super().__init__()
        _check_sizes(num_sinks, window)
        self.num_sinks, self.window, self.rotary = num_sinks, window, rotary
        self.seen = 0  # tokens appended so far, evicted ones included
        self.positions = torch.zeros(0, dtype=torch.long)  # (n,) positions in the stream of the kept tokens

    @property
    def capacity(self) -> int:
        """The most tokens kept between steps, ``num_sinks + window``."""
        return self.num_sinks + self.window

    def append(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Add the new tokens' keys and values ``(B, G, T_new, d)``; return the keys and values
        to attend to now, ``(B, G, n + T_new, d)`` (with RoPE: rotated by cache positions
        ``0 .. n + T_new - 1``), then evict down to ``num_sinks + window``.

        Raises:
            ValueError: wrong ranks or shapes, or more new tokens than fit without evicting
                one that a new token still needs (``n + T_new > num_sinks + window + 1``
                with ``T_new > 1``).
        """
        check_rank(k, "k", 4, "(B, G, T_new, d)")
        check_rank(v, "v", 4, "(B, G, T_new, d)")
        n, T = self.length, k.shape[2]
        if T > 1 and n + T > self.capacity + 1:
            raise ValueError(
                f"a sink cache holding {n} tokens takes at most {self.capacity + 1 - n} tokens at once "
                f"(num_sinks + window + 1 = {self.capacity + 1} in all), else a new token would see an evicted one; "
                f"got {T}: feed the rest one token at a time (stream_logits does)"
            )
        if self.keys is not None and (k.shape[:2] != self.keys.shape[:2] or k.shape[3] != self.keys.shape[3]):
            raise ValueError(
                f"new keys must have shape (B, G, T_new, d) = (*, {', '.join(map(str, self.keys.shape[:2]))}, "
                f"T_new, {self.keys.shape[3]}) like the cached ones; got {shape_str(k.shape)}"
            )
        if self.rotary is not None:  # the layer rotated the new keys to positions n..n+T-1: undo it
            cos, sin = self.rotary.cos_sin(T, offset=n, device=k.device, dtype=k.dtype)  # (T, d/2) x 2
            k = apply_rotary(k, cos, -sin)  # (B, G, T, d), rotated back by -(n..n+T-1)
        keys, values = super().append(k, v)  # (B, G, n + T, d) x 2, un-rotated keys
        self.positions = torch.cat([self.positions, torch.arange(self.seen, self.seen + T)])  # (n + T,)
        self.seen += T
        attend_keys = keys if self.rotary is None else self.rotary(keys, 0)  # (B, G, n + T, d)
        evict = n + T - self.capacity
        if evict > 0:  # drop the oldest tokens after the sinks
            keep = torch.cat([torch.arange(self.num_sinks), torch.arange(self.num_sinks + evict, n + T)])  # (cap,)
            self.keys = keys[:, :, keep.to(keys.device)]  # (B, G, cap, d)
            self.values = values[:, :, keep.to(values.device)]  # (B, G, cap, d)
            self.positions = self.positions[keep]  # (cap,)
        return attend_keys, values


class SinkKVCache(KVCache):
    """One :class:`SinkLayerCache` per layer: a drop-in for
    :class:`~attnlib.transformer.layers.KVCache` in :meth:`DecoderOnlyLM.forward
    <attnlib.transformer.lm.DecoderOnlyLM.forward>`.

    Args:
        num_layers: decoder layers.
        num_sinks: first tokens kept (the paper: 4).
        window: most recent tokens kept.
        rotary: the model's rotary embedding if it uses RoPE (see :meth:`for_model`).
    """

    def __init__(self, num_layers: int, num_sinks: int, window: int, rotary: Optional[RotaryEmbedding] = None) -> None:
        _check_sizes(num_sinks, window)
        super().__init__(0)
        self.num_sinks, self.window = num_sinks, window
        self.layers = [SinkLayerCache(num_sinks, window, rotary) for _ in range(num_layers)]

    @classmethod
    def for_model(cls, model: DecoderOnlyLM, num_sinks: int, window: int) -> "SinkKVCache":
        """An empty cache for ``model``, with its rotary embedding when it uses RoPE.

        Raises:
            ValueError: ``num_sinks + window + 1`` above the model's ``max_len`` (the positions
                the cache hands out must exist).
        """
        if num_sinks + window + 1 > model.max_len:
            raise ValueError(
                f"num_sinks + window + 1 must be at most the model's max_len = {model.max_len}; "
                f"got num_sinks={num_sinks}, window={window}"
            )
        rotary = getattr(model.layers[0], "rotary", None) if len(model.layers) else None
        return cls(len(model.layers), num_sinks, window, rotary)

    @property
    def seen(self) -> int:
        """Tokens fed so far, evicted ones included."""
        layer = self.layers[0] if self.layers else None
        return layer.seen if isinstance(layer, SinkLayerCache) else 0

    def to_state(self) -> tuple:
        raise NotImplementedError("a SinkKVCache cannot be reordered for beam search; use a KVCache")


def stream_logits(model: DecoderOnlyLM, tokens: Tensor, cache: SinkKVCache) -> Tensor:
    """Run ``model`` over ``tokens`` with ``cache``, in the largest pieces the cache takes exactly:
    first as many tokens as fit before anything is evicted, then one token at a time.

    Args:
        model: a :class:`~attnlib.transformer.lm.DecoderOnlyLM`.
        tokens: ``(B, T)`` token ids that continue what ``cache`` has seen.
        cache: updated in place.

    Returns:
        ``(B, T, V)`` logits, row ``t`` predicting token ``t + 1``: with a large enough cache
        the logits of ``model(tokens)``.
    """
    check_rank(tokens, "tokens", 2, "(B, T)")
    if not isinstance(cache, SinkKVCache):
        raise ValueError(f"cache must be a SinkKVCache; got {type(cache).__name__}")
    first = max(1, min(tokens.shape[1], cache.num_sinks + cache.window + 1 - cache.length))
    pieces = [model(tokens[:, :first], cache)]  # (B, first, V)
    pieces += [model(tokens[:, t : t + 1], cache) for t in range(first, tokens.shape[1])]  # (B, 1, V) each
    return torch.cat(pieces, dim=1)  # (B, T, V)


@torch.no_grad()
def generate_streaming(
    model: DecoderOnlyLM,
    prompt: Tensor,
    max_new_tokens: int,
    num_sinks: int,
    window: int,
    temperature: float = 1.0,
    greedy: bool = True,
    generator: Optional[torch.Generator] = None,
) -> tuple[Tensor, Tensor]:
    """:meth:`DecoderOnlyLM.generate <attnlib.transformer.lm.DecoderOnlyLM.generate>` with a
    :class:`SinkKVCache`: as many new tokens as wanted, in memory bounded by ``num_sinks + window``.

    Args:
        model: a :class:`~attnlib.transformer.lm.DecoderOnlyLM`.
        prompt: ``(B, T0)`` token ids, ``T0 >= 1`` (any length).
        max_new_tokens: tokens to add (may exceed the model's ``max_len``).
        num_sinks, window: the cache's sizes (``num_sinks = 0``: a rolling window).
        temperature, greedy, generator: as ``DecoderOnlyLM.generate``.

    Returns:
        ``(tokens (B, T0 + max_new_tokens), logits (B, max_new_tokens, V))``.
    """
    _check_generation(prompt, temperature)
    was_training = model.training
    model.eval()
    cache = SinkKVCache.for_model(model, num_sinks, window)
    tokens, all_logits = prompt, []
    logits = stream_logits(model, prompt, cache)[:, -1]  # (B, V)
    for step in range(max_new_tokens):
        if step > 0:
            logits = model(tokens[:, -1:], cache)[:, -1]  # (B, V): one token a step
        nxt = _next_token(logits, temperature, greedy, generator)  # (B, 1)
        all_logits.append(logits)
        tokens = torch.cat([tokens, nxt], dim=1)  # (B, T + 1)
    model.train(was_training)
    empty = prompt.new_zeros((prompt.shape[0], 0, model.vocab_size), dtype=model.embed.weight.dtype)
    return tokens, torch.stack(all_logits, dim=1) if all_logits else empty  # (B, N, V)
