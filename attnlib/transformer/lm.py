"""A decoder-only Transformer language model with cached generation.

A stack of pre-norm decoder layers without cross-attention (the GPT arrangement: Radford
et al., 2018), trained to predict token ``t + 1`` from tokens ``0..t`` with the causal mask
of Vaswani et al. (2017, arXiv:1706.03762).  Positions are sinusoidal, learned, or rotary
(RoPE, Su et al., 2024, arXiv:2104.09864), see :mod:`attnlib.transformer.positional`, or
linear biases on the scores (ALiBi, Press et al., 2022, arXiv:2108.12409), see
:mod:`attnlib.transformer.alibi`.  The self-attention may share key/value heads between
query heads (``num_kv_heads``: grouped-query or multi-query attention, see
:mod:`attnlib.transformer.grouped_query_attention`), which shrinks the cache.

Generation feeds the model its own output one token at a time.  Without a cache, step
``t`` recomputes every layer on all ``t`` tokens of the prefix; with a
:class:`~attnlib.transformer.layers.KVCache`, the prefix's keys and values are kept and
each step processes one token, attending to the cached ones.  The two give the same
logits (tested to 1e-5), since the causal mask makes earlier positions independent of
later ones.  A cache that keeps only the first few tokens and a window of recent ones
(:class:`~attnlib.transformer.sink_cache.SinkKVCache`, StreamingLLM) goes through the
same :meth:`DecoderOnlyLM.forward`; see :func:`~attnlib.transformer.sink_cache.generate_streaming`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_rank, shape_str
from .layers import KVCache, TransformerDecoderLayer  # KVCache importable from here too (documented in layers)
from .positional import LearnedPositionalEncoding, SinusoidalPositionalEncoding

__all__ = ["LMConfig", "DecoderOnlyLM"]

POSITIONAL_KINDS = ("sinusoidal", "learned", "rope", "alibi")


def _check_generation(prompt: Tensor, temperature: float) -> None:
    """The checks every generation loop makes: a ``(B, T0)`` prompt with ``T0 >= 1``, a positive temperature."""
    check_rank(prompt, "prompt", 2, "(B, T0)")
    if prompt.shape[1] < 1:
        raise ValueError(f"prompt must hold at least one token; got shape {shape_str(prompt.shape)}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0; got {temperature}")


def _next_token(logits: Tensor, temperature: float, greedy: bool, generator: Optional[torch.Generator]) -> Tensor:
    """Logits ``(B, V)`` -> the next tokens ``(B, 1)``: the arg-max, or a sample of
    ``softmax(logits / temperature)``."""
    if greedy:
        return logits.argmax(dim=-1, keepdim=True)  # (B, 1)
    probs = torch.softmax(logits / temperature, dim=-1)  # (B, V)
    return torch.multinomial(probs, 1, generator=generator)  # (B, 1)


@dataclass(frozen=True)
class LMConfig:
    """Sizes of a :class:`DecoderOnlyLM` (small defaults: a character model on a CPU)."""

    vocab_size: int  # number of token ids
    d_model: int = 128  # model width D
    num_heads: int = 4  # attention heads; D must be divisible by it
    num_layers: int = 2  # decoder layers
    d_ff: int = 512  # feed-forward hidden size (usually 4 D)
    max_len: int = 256  # longest sequence: prompt plus generated tokens
    dropout: float = 0.0  # dropout in every layer
    positional: str = "sinusoidal"  # "sinusoidal", "learned", "rope" or "alibi"
    num_kv_heads: Optional[int] = None  # key/value heads: None = num_heads (MHA), fewer = GQA, 1 = MQA

    def __post_init__(self) -> None:
        if self.positional not in POSITIONAL_KINDS:
            raise ValueError(f"positional must be one of {POSITIONAL_KINDS}; got {self.positional!r}")
        if self.num_kv_heads is not None and (self.num_kv_heads < 1 or self.num_heads % self.num_kv_heads):
            raise ValueError(
                f"num_kv_heads must be a positive divisor of num_heads; "
                f"got num_heads={self.num_heads}, num_kv_heads={self.num_kv_heads}"
            )
        if self.d_model % self.num_heads != 0:
            raise ValueError(
                f"d_model must be divisible by num_heads; got d_model={self.d_model}, num_heads={self.num_heads}"
            )


class DecoderOnlyLM(nn.Module):
    """Causal Transformer language model (character- or word-level).

    Args:
        config: the sizes, an :class:`LMConfig`.

    Raises:
        ValueError: (from :class:`LMConfig`) an unknown ``positional``, ``d_model`` not
            divisible by ``num_heads``, or ``num_kv_heads`` not dividing ``num_heads``.
    """

    def __init__(self, config: LMConfig) -> None:
        super().__init__()
        if not isinstance(config, LMConfig):
            raise ValueError(f"config must be an LMConfig; got {type(config).__name__}")
        c = self.config = config
        self.vocab_size, self.d_model, self.max_len, self.positional = c.vocab_size, c.d_model, c.max_len, c.positional
        self.embed = nn.Embedding(c.vocab_size, c.d_model)
        nn.init.normal_(self.embed.weight, std=c.d_model**-0.5)
        if c.positional == "sinusoidal":
            self.positions: Optional[nn.Module] = SinusoidalPositionalEncoding(c.d_model, c.max_len, dropout=c.dropout)
        elif c.positional == "learned":
            self.positions = LearnedPositionalEncoding(c.d_model, c.max_len, dropout=c.dropout)
        else:
            self.positions = None  # RoPE and ALiBi act inside the attention of every layer
        self.layers = nn.ModuleList(
            TransformerDecoderLayer(
                c.d_model,
                c.num_heads,
                c.d_ff,
                c.dropout,
                norm_first=True,
                cross_attention=False,
                rotary=c.positional == "rope",
                num_kv_heads=c.num_kv_heads,
                alibi=c.positional == "alibi",
            )
            for _ in range(c.num_layers)
        )
        self.norm = nn.LayerNorm(c.d_model)
        self.head = nn.Linear(c.d_model, c.vocab_size, bias=False)
        self.head.weight = self.embed.weight  # tied input and output embeddings

    def new_cache(self) -> KVCache:
        """An empty cache with one entry per layer."""
        return KVCache(len(self.layers))

    def forward(self, tokens: Tensor, cache: Optional[KVCache] = None) -> Tensor:
        """Next-token logits.

        Args:
            tokens: ``(B, T)`` token ids; with a cache, only the tokens not yet seen.
            cache: updated in place; the tokens continue at position ``cache.length``.

        Returns:
            ``(B, T, V)`` logits; row ``t`` predicts token ``t + 1``.

        Raises:
            ValueError: wrong rank, or more than ``max_len`` positions.
        """
        check_rank(tokens, "tokens", 2, "(B, T)")
        offset = cache.length if cache is not None else 0
        if offset + tokens.shape[1] > self.max_len:
            raise ValueError(
                f"at most max_len = {self.max_len} positions; got {offset} cached + "
                f"tokens of shape {shape_str(tokens.shape)}"
            )
        x = self.embed(tokens) * math.sqrt(self.d_model)  # (B, T, D)
        if self.positions is not None:
            x = self.positions(x, offset=offset)  # (B, T, D)
        for i, layer in enumerate(self.layers):
            x = layer(x, causal=True, cache=cache[i] if cache is not None else None)  # (B, T, D)
        return self.head(self.norm(x))  # (B, T, V)

    def loss(self, tokens: Tensor) -> Tensor:
        """Mean cross-entropy of predicting ``tokens[:, 1:]`` from ``tokens[:, :-1]`` (``(B, T)``)."""
        logits = self(tokens[:, :-1])  # (B, T-1, V)
        return F.cross_entropy(logits.flatten(0, 1), tokens[:, 1:].flatten())

    @torch.no_grad()
    def generate(
        self,
        prompt: Tensor,
        max_new_tokens: int,
        use_cache: bool = True,
        temperature: float = 1.0,
        greedy: bool = True,
        generator: Optional[torch.Generator] = None,
    ) -> tuple[Tensor, Tensor]:
        """Continue ``prompt`` by ``max_new_tokens`` tokens.

        Args:
            prompt: ``(B, T0)`` token ids, ``T0 >= 1``.
            max_new_tokens: tokens to add.
            use_cache: keep the keys and values (one token per step) or recompute the whole
                prefix at every step; both give the same tokens and logits.
            temperature: divides the logits before sampling (``> 0``).
            greedy: take the arg-max; otherwise sample from ``softmax(logits / temperature)``.
            generator: for sampling (pass a seeded one for reproducible samples).

        Returns:
            ``(tokens (B, T0 + max_new_tokens), logits (B, max_new_tokens, V))``, the logits
            being those each new token was chosen from (before the temperature).
        """
        _check_generation(prompt, temperature)
        was_training = self.training
        self.eval()
        tokens, all_logits = prompt, []
        cache = self.new_cache() if use_cache else None
        fresh = prompt  # what the model has not seen yet
        for _ in range(max_new_tokens):
            if use_cache:
                logits = self(fresh, cache)[:, -1]  # (B, V): the prompt once, then one token a step
            else:
                logits = self(tokens)[:, -1]  # (B, V): the whole prefix every step
            nxt = _next_token(logits, temperature, greedy, generator)  # (B, 1)
            all_logits.append(logits)
            tokens = torch.cat([tokens, nxt], dim=1)  # (B, T + 1)
            fresh = nxt
        self.train(was_training)
        empty = prompt.new_zeros((prompt.shape[0], 0, self.vocab_size), dtype=self.embed.weight.dtype)
        return tokens, torch.stack(all_logits, dim=1) if all_logits else empty  # (B, N, V)
