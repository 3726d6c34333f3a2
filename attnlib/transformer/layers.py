"""Transformer encoder and decoder layers, post-norm and pre-norm, with a key/value cache.

Vaswani et al. (2017), "Attention is all you need", NeurIPS, arXiv:1706.03762, §3.1 and
§3.3; layer normalisation from Ba, Kiros & Hinton (2016), arXiv:1607.06450.  Each
sub-layer (self-attention, cross-attention, feed-forward ``FFN(x) = max(0, x W1 + b1) W2 + b2``)
sits in a residual connection with dropout, in one of two arrangements::

    post-norm (the paper):  x = LayerNorm(x + Dropout(Sublayer(x)))
    pre-norm:               x = x + Dropout(Sublayer(LayerNorm(x)))

Pre-norm leaves an identity path from input to output, which trains deep stacks without
learning-rate warm-up; a pre-norm stack ends with one more LayerNorm (in the model).
The submodules carry the names of :class:`torch.nn.TransformerEncoderLayer` and
:class:`torch.nn.TransformerDecoderLayer`, which compute the same numbers (tested).

Cached decoding: a decoder fed one new token at a time keeps the projected keys and
values of the tokens it has already seen (:class:`KVCache`), so each step projects one
token instead of the whole prefix; the cross-attention keys and values of the encoder's
memory are projected once and kept too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import torch
from torch import Tensor, nn

from ..masks import causal_mask, combine_masks
from .alibi import alibi_bias
from .grouped_query_attention import GroupedQueryAttention
from .mha import MultiHeadAttention
from .positional import RotaryEmbedding

__all__ = ["LayerCache", "KVCache", "TransformerEncoderLayer", "TransformerDecoderLayer"]


@dataclass
class LayerCache:
    """What one decoder layer keeps between steps (all ``(B, H, ., d)``, or None; ``H`` is the
    number of key/value heads, fewer with grouped-query attention)."""

    keys: Optional[Tensor] = None  # (B, H, T_seen, d) self-attention keys
    values: Optional[Tensor] = None  # (B, H, T_seen, d)
    memory_keys: Optional[Tensor] = None  # (B, H, S, d) cross-attention keys, projected once
    memory_values: Optional[Tensor] = None  # (B, H, S, d)

    @property
    def length(self) -> int:
        """Number of tokens seen so far (the position of the next token)."""
        return 0 if self.keys is None else self.keys.shape[2]

    def append(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Add the new tokens' keys and values ``(B, H, T_new, d)``; return all of them."""
        self.keys = k if self.keys is None else torch.cat([self.keys, k], dim=2)  # (B, H, T_seen + T_new, d)
        self.values = v if self.values is None else torch.cat([self.values, v], dim=2)
        return self.keys, self.values


class KVCache:
    """One :class:`LayerCache` per layer.

    Args:
        num_layers: number of decoder layers.
    """

    def __init__(self, num_layers: int) -> None:
        self.layers = [LayerCache() for _ in range(num_layers)]

    def __getitem__(self, index: int) -> LayerCache:
        return self.layers[index]

    def __len__(self) -> int:
        return len(self.layers)

    @property
    def length(self) -> int:
        """Tokens cached so far."""
        return self.layers[0].length if self.layers else 0

    def to_state(self) -> tuple:
        """A nested tuple of tensors (what :mod:`attnlib.seq2seq.decoding` can reorder for beam search)."""
        return tuple((c.keys, c.values, c.memory_keys, c.memory_values) for c in self.layers)

    @classmethod
    def from_state(cls, state: tuple) -> "KVCache":
        cache = cls(len(state))
        cache.layers = [LayerCache(*entry) for entry in state]
        return cache


def _feed_forward(d_model: int, d_ff: int) -> tuple[nn.Linear, nn.Linear]:
    return nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model)  # W1, W2


class TransformerEncoderLayer(nn.Module):
    """Self-attention and a feed-forward network, each in a residual connection.

    Args:
        d_model: ``D``, the model width (the paper: 512).
        num_heads: attention heads (the paper: 8).
        d_ff: the feed-forward network's hidden size (the paper: 2048).
        dropout: on attention weights, sub-layer outputs and the FFN's hidden layer (the paper: 0.1).
        norm_first: pre-norm instead of the paper's post-norm.
    """

    def __init__(self, d_model: int, num_heads: int, d_ff: int, dropout: float = 0.1, norm_first: bool = False) -> None:
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, num_heads, dropout=dropout)
        self.linear1, self.linear2 = _feed_forward(d_model, d_ff)
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.dropout, self.dropout1, self.dropout2 = nn.Dropout(dropout), nn.Dropout(dropout), nn.Dropout(dropout)
        self.norm_first = norm_first

    def _sa(self, x: Tensor, key_padding_mask: Optional[Tensor]) -> Tensor:
        return self.dropout1(self.self_attn(x, x, x, key_padding_mask=key_padding_mask)[0])  # (B, T, D)

    def _ff(self, x: Tensor) -> Tensor:
        return self.dropout2(self.linear2(self.dropout(torch.relu(self.linear1(x)))))  # (B, T, D)

    def forward(self, x: Tensor, key_padding_mask: Optional[Tensor] = None) -> Tensor:
        """``x (B, T, D)`` -> ``(B, T, D)``.

        Args:
            key_padding_mask: ``(B, T)`` bool, ``True`` at real tokens (attnlib's convention).
        """
        if self.norm_first:
            x = x + self._sa(self.norm1(x), key_padding_mask)
            return x + self._ff(self.norm2(x))
        x = self.norm1(x + self._sa(x, key_padding_mask))
        return self.norm2(x + self._ff(x))


class TransformerDecoderLayer(nn.Module):
    """Masked self-attention, cross-attention over the encoder's memory, feed-forward.

    Args:
        d_model, num_heads, d_ff, dropout, norm_first: as :class:`TransformerEncoderLayer`.
        cross_attention: include the cross-attention sub-layer (False: a decoder-only
            language model's block).
        rotary: rotate self-attention queries and keys with
            :class:`~attnlib.transformer.positional.RotaryEmbedding` (RoPE).
        num_kv_heads: self-attention with this many key/value heads,
            :class:`~attnlib.transformer.grouped_query_attention.GroupedQueryAttention`
            (``1``: multi-query attention); ``None``: :class:`~attnlib.transformer.mha.MultiHeadAttention`.
        alibi: add the ALiBi bias :func:`~attnlib.transformer.alibi.alibi_bias` to the
            self-attention scores (positions counted from the start of the cache).
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        d_ff: int,
        dropout: float = 0.1,
        norm_first: bool = False,
        cross_attention: bool = True,
        rotary: bool = False,
        num_kv_heads: Optional[int] = None,
        alibi: bool = False,
    ) -> None:
        super().__init__()
        self.self_attn = (
            MultiHeadAttention(d_model, num_heads, dropout=dropout)
            if num_kv_heads is None
            else GroupedQueryAttention(d_model, num_heads, num_kv_heads, dropout=dropout)
        )
        self.multihead_attn = MultiHeadAttention(d_model, num_heads, dropout=dropout) if cross_attention else None
        self.linear1, self.linear2 = _feed_forward(d_model, d_ff)
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model) if cross_attention else None
        self.dropout = nn.Dropout(dropout)
        self.dropout1, self.dropout2, self.dropout3 = nn.Dropout(dropout), nn.Dropout(dropout), nn.Dropout(dropout)
        self.rotary = RotaryEmbedding(d_model // num_heads) if rotary else None
        self.alibi = alibi
        self.norm_first = norm_first

    def _sa(self, x: Tensor, self_mask: Optional[Tensor], causal: bool, cache: Optional[LayerCache]) -> Tensor:
        mha = self.self_attn
        if cache is None and self.rotary is None and not self.alibi:  # the plain path, with the module's checks
            return self.dropout1(mha(x, x, x, attn_mask=self_mask, is_causal=causal)[0])
        offset = cache.length if cache is not None else 0
        q = mha.project_query(x)  # (B, H, T_new, d)
        k, v = mha.project_key_value(x, x)  # (B, G, T_new, d) x 2; G = H but for grouped-query attention
        if self.rotary is not None:
            q, k = self.rotary(q, offset), self.rotary(k, offset)  # positions offset..offset+T_new-1
        if cache is not None:
            k, v = cache.append(k, v)  # (B, G, T_seen, d): every token so far
        T, S = q.shape[2], k.shape[2]
        mask = combine_masks(
            {
                "self_mask": self_mask[:, None] if self_mask is not None and self_mask.dim() == 3 else self_mask,
                # one new token may see every cached one: no causal mask needed
                "causal mask": causal_mask(T, S, offset=offset, device=x.device)
                if causal and T > 1
                else None,  # (T, S)
                "alibi bias": alibi_bias(mha.num_heads, T, S, offset=offset, device=x.device, dtype=x.dtype)
                if self.alibi
                else None,  # (H, T, S)
            },
            dtype=x.dtype,
        )
        return self.dropout1(mha.attend(q, k, v, mask=mask)[0])  # (B, T_new, D)

    def _ca(
        self,
        mha: MultiHeadAttention,
        x: Tensor,
        memory: Tensor,
        memory_key_padding_mask: Optional[Tensor],
        cache: Optional[LayerCache],
        need_weights: bool,
    ) -> tuple[Tensor, Optional[Tensor]]:
        if cache is None:
            out, weights = mha(x, memory, memory, key_padding_mask=memory_key_padding_mask, need_weights=need_weights)
            return self.dropout2(out), weights
        keys, values = cache.memory_keys, cache.memory_values
        if keys is None or values is None:
            keys, values = mha.project_key_value(memory, memory)  # (B, H, S, d) x 2, projected once
            cache.memory_keys, cache.memory_values = keys, values
        mask = None if memory_key_padding_mask is None else memory_key_padding_mask[:, None, None, :]  # (B, 1, 1, S)
        out, weights = mha.attend(mha.project_query(x), keys, values, mask=mask, need_weights=need_weights)
        return self.dropout2(out), weights.mean(dim=1) if weights is not None else None  # (B, T, S)

    def _ff(self, x: Tensor) -> Tensor:
        return self.dropout3(self.linear2(self.dropout(torch.relu(self.linear1(x)))))  # (B, T, D)

    def forward(
        self,
        x: Tensor,
        memory: Optional[Tensor] = None,
        self_mask: Optional[Tensor] = None,
        causal: bool = True,
        memory_key_padding_mask: Optional[Tensor] = None,
        cache: Optional[LayerCache] = None,
        need_weights: bool = False,
    ) -> Any:
        """Run the layer on target positions.

        Args:
            x: ``(B, T, D)`` the target tokens (with a cache: only the new ones).
            memory: ``(B, S, D)`` the encoder's output (ignored without cross-attention).
            self_mask: ``(T, S_self)`` or ``(B, T, S_self)`` extra self-attention mask
                (True = may attend), combined with ``causal``.
            causal: position ``t`` sees target positions ``<= t`` only.
            memory_key_padding_mask: ``(B, S)`` bool, ``True`` at real source tokens.
            cache: this layer's :class:`LayerCache`, updated in place; positions continue
                from ``cache.length``.
            need_weights: also return the cross-attention weights averaged over heads.

        Returns:
            ``(B, T, D)``, or ``((B, T, D), weights (B, T, S) or None)`` with ``need_weights``.
        """
        cross = self.multihead_attn
        if cross is not None and memory is None:
            raise ValueError("this decoder layer has cross-attention: memory (B, S, D) is required")
        last_norm = self.norm3 if self.norm3 is not None else self.norm2  # before the feed-forward (pre-norm)
        weights = None
        if self.norm_first:
            x = x + self._sa(self.norm1(x), self_mask, causal, cache)
            if cross is not None and memory is not None:
                out, weights = self._ca(cross, self.norm2(x), memory, memory_key_padding_mask, cache, need_weights)
                x = x + out
            x = x + self._ff(last_norm(x))
        else:
            x = self.norm1(x + self._sa(x, self_mask, causal, cache))
            if cross is not None and memory is not None:
                out, weights = self._ca(cross, x, memory, memory_key_padding_mask, cache, need_weights)
                x = self.norm2(x + out)
            x = last_norm(x + self._ff(x))
        return (x, weights) if need_weights else x
