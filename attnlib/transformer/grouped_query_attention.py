"""Grouped-query attention (GQA) and multi-query attention (MQA): fewer key/value heads than query heads.

Papers on sharing key/value heads
----------------------------------
* N. Shazeer, "Fast Transformer decoding: one write-head is all you need", 2019,
  arXiv:1911.02150: *multi-query attention*, every query head shares one key head and one
  value head.
* J. Ainslie, J. Lee-Thorp, M. de Jong, Y. Zemlyanskiy, F. Lebrón and S. Sanghai, "GQA:
  training generalized multi-query Transformer models from multi-head checkpoints", EMNLP
  2023, arXiv:2305.13245: *grouped-query attention*, ``G`` key/value heads, each shared by a
  group of ``H / G`` query heads; and the conversion of a trained multi-head model by
  mean-pooling the key and value projections of each group (§2.1, "uptraining").

What is computed
----------------
``H`` query heads and ``G`` key/value heads of ``d = E / H`` features each, ``G`` dividing
``H``.  Query head ``h`` belongs to group ``g = h // (H / G)`` and attends with key and value
head ``g``::

    head_h = softmax(Q W_h^Q (K W_g^K)^T / sqrt(d) + mask) V W_g^V           (T, d)
    GQA(Q, K, V) = concat(head_1, ..., head_H) W^O                           (T, E)

``G = H`` is multi-head attention (:class:`~attnlib.transformer.mha.MultiHeadAttention`,
the same numbers with the same weights, tested), ``G = 1`` is multi-query attention.  The
key and value projections shrink from ``E x E`` to ``E x G d``, and so does what a KV cache
keeps per token: ``2 G d`` numbers per layer instead of ``2 H d`` (:func:`kv_cache_numel`).
The ``G`` cached heads are repeated ``H / G`` times only when attention runs
(:meth:`GroupedQueryAttention.attend`): the cache, the bytes read from it at every decoding
step and the key/value projections shrink, while the scores and weighted sums still cost
what ``H`` heads cost.

The class is a :class:`~attnlib.transformer.mha.MultiHeadAttention` with smaller key and
value projections: the call signature, the masks (:mod:`attnlib.masks`), the two paths
(fused kernel / reference with weights) and the recorded weights ``(B, H, T, S)`` are
those of its parent, so it can take the place of the self-attention of a
:class:`~attnlib.transformer.layers.TransformerDecoderLayer`, KV cache included.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from .._checks import shape_str
from .mha import MultiHeadAttention

__all__ = ["kv_cache_numel", "GroupedQueryAttention", "GQA", "mha_to_gqa"]


def kv_cache_numel(num_layers: int, num_kv_heads: int, head_dim: int, seq_len: int, batch_size: int = 1) -> int:
    """Numbers a KV cache holds: ``2 (keys and values) x layers x batch x KV heads x tokens x d``.

    Multiply by the bytes per number (2 for float16/bfloat16, 4 for float32) for the memory.
    For a model with ``H`` heads of ``d`` features, multi-head attention has ``num_kv_heads = H``.

    Raises:
        ValueError: a negative size.
    """
    sizes = {"num_layers": num_layers, "num_kv_heads": num_kv_heads, "head_dim": head_dim, "seq_len": seq_len}
    sizes["batch_size"] = batch_size
    if min(sizes.values()) < 0:
        raise ValueError(f"sizes must be >= 0; got {sizes}")
    return 2 * num_layers * batch_size * num_kv_heads * seq_len * head_dim


class GroupedQueryAttention(MultiHeadAttention):
    """Attention with ``num_heads`` query heads sharing ``num_kv_heads`` key/value heads.

    Args:
        embed_dim: ``E``, the size of queries and of the output.
        num_heads: ``H`` query heads; ``E`` must be divisible by it (``d = E / H``).
        num_kv_heads: ``G`` key/value heads; must divide ``H`` (``H``: multi-head attention,
            ``1``: multi-query attention).
        dropout, bias, kdim, vdim: as :class:`~attnlib.transformer.mha.MultiHeadAttention`.

    The call is :meth:`MultiHeadAttention.forward <attnlib.transformer.mha.MultiHeadAttention.forward>`:
    ``module(query, key, value, key_padding_mask=None, attn_mask=None, need_weights=False,
    average_attn_weights=True, is_causal=False)`` -> ``(output (B, T, E), weights or None)``.

    Raises:
        ValueError: ``num_kv_heads`` not dividing ``num_heads``, or the errors of the parent.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        num_kv_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        kdim: int | None = None,
        vdim: int | None = None,
    ) -> None:
        if num_kv_heads < 1 or num_heads % num_kv_heads != 0:
            raise ValueError(
                f"num_kv_heads must be a positive divisor of num_heads (each key/value head serves "
                f"num_heads / num_kv_heads query heads); got num_heads={num_heads}, num_kv_heads={num_kv_heads}"
            )
        super().__init__(embed_dim, num_heads, dropout=dropout, bias=bias, kdim=kdim, vdim=vdim)
        self.num_kv_heads = num_kv_heads
        self.group_size = num_heads // num_kv_heads  # query heads per key/value head
        kv_dim = num_kv_heads * self.head_dim  # G d
        self.k_proj = nn.Linear(self.kdim, kv_dim, bias=bias)  # W^K of the G key heads, side by side
        self.v_proj = nn.Linear(self.vdim, kv_dim, bias=bias)  # W^V
        self._reset_parameters()

    # ------------------------------------------------------------------ building blocks
    def project_key_value(self, key: Tensor, value: Tensor) -> tuple[Tensor, Tensor]:
        """Keys ``(B, S, kdim)`` and values ``(B, S, vdim)`` -> two ``(B, G, S, d)`` tensors:
        what a KV cache stores, ``G = num_kv_heads`` heads only."""
        B, S, _ = key.shape
        k = self.k_proj(key).view(B, S, self.num_kv_heads, self.head_dim).transpose(1, 2)  # (B, G, S, d)
        v = self.v_proj(value).view(B, S, self.num_kv_heads, self.head_dim).transpose(1, 2)  # (B, G, S, d)
        return k, v

    def expand_key_value(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Repeat each of the ``G`` key/value heads for the ``H / G`` query heads of its group:
        ``(B, G, S, d)`` -> ``(B, H, S, d)``, head ``h`` a copy of head ``h // (H / G)``."""
        for name, x in (("k", k), ("v", v)):
            if x.dim() != 4 or x.shape[1] != self.num_kv_heads or x.shape[-1] != self.head_dim:
                raise ValueError(
                    f"{name} must have shape (B, G={self.num_kv_heads}, S, d={self.head_dim}); got {shape_str(x.shape)}"
                )
        r = self.group_size
        return k.repeat_interleave(r, dim=1), v.repeat_interleave(r, dim=1)  # (B, H, S, d) x 2

    def attend(
        self,
        q: Tensor,
        k: Tensor,
        v: Tensor,
        mask: Optional[Tensor] = None,
        is_causal: bool = False,
        need_weights: bool = False,
    ) -> tuple[Tensor, Optional[Tensor]]:
        """As :meth:`MultiHeadAttention.attend <attnlib.transformer.mha.MultiHeadAttention.attend>`,
        with ``q (B, H, T, d)`` and the ``G`` key/value heads ``k, v (B, G, S, d)`` (expanded here
        by :meth:`expand_key_value`).

        Returns:
            ``(output (B, T, E), weights (B, H, T, S) or None)``.
        """
        k, v = self.expand_key_value(k, v)  # (B, H, S, d) x 2
        return super().attend(q, k, v, mask=mask, is_causal=is_causal, need_weights=need_weights)

    # ------------------------------------------------------------------ sizes
    def kv_cache_numel(self, seq_len: int, batch_size: int = 1) -> int:
        """Numbers this layer's KV cache holds for ``seq_len`` tokens: ``2 B G seq_len d``."""
        return kv_cache_numel(1, self.num_kv_heads, self.head_dim, seq_len, batch_size)

    def kv_cache_bytes(self, seq_len: int, batch_size: int = 1, dtype: Optional[torch.dtype] = None) -> int:
        """Bytes of this layer's KV cache for ``seq_len`` tokens, in ``dtype`` (default: the
        module's parameter dtype)."""
        dtype = self.k_proj.weight.dtype if dtype is None else dtype
        return self.kv_cache_numel(seq_len, batch_size) * torch.empty((), dtype=dtype).element_size()

    # ------------------------------------------------------------------ conversion
    @classmethod
    def from_mha(cls, mha: MultiHeadAttention, num_kv_heads: int) -> "GroupedQueryAttention":
        """Convert a (trained) multi-head attention module by mean-pooling heads (Ainslie et al. 2023, §2.1).

        The query and output projections are copied.  The key (and value) projection of group
        ``g`` is the mean of the projections of the ``H / G`` heads ``g (H / G) .. (g + 1) H / G - 1``
        (rows ``h d .. (h + 1) d - 1`` of ``W^K``, and the biases alike).  With
        ``num_kv_heads = H`` nothing is pooled and the result computes what ``mha`` computes.
        The paper then continues training ("uptraining") for a few percent of the original steps.

        Returns:
            A new module on ``mha``'s device and dtype, in ``mha``'s training mode.

        Raises:
            ValueError: ``mha`` not a MultiHeadAttention with ``G`` equal heads, or ``num_kv_heads``
                not dividing its ``num_heads``.
        """
        if not isinstance(mha, MultiHeadAttention) or (
            isinstance(mha, GroupedQueryAttention) and mha.num_kv_heads != mha.num_heads
        ):
            raise ValueError(
                f"mha must be a MultiHeadAttention (one key/value head per query head); got {type(mha).__name__}"
            )
        H, d = mha.num_heads, mha.head_dim
        gqa = cls(
            mha.embed_dim,
            H,
            num_kv_heads,
            dropout=mha.dropout,
            bias=mha.q_proj.bias is not None,
            kdim=mha.kdim,
            vdim=mha.vdim,
        )
        gqa.to(device=mha.q_proj.weight.device, dtype=mha.q_proj.weight.dtype)
        G, r = num_kv_heads, H // num_kv_heads
        with torch.no_grad():
            for name in ("q_proj", "out_proj"):
                getattr(gqa, name).load_state_dict(getattr(mha, name).state_dict())
            for name in ("k_proj", "v_proj"):
                src, dst = getattr(mha, name), getattr(gqa, name)
                w = src.weight.view(G, r, d, src.in_features)  # (G, H/G, d, in): head h = g r + j
                dst.weight.copy_(w.mean(dim=1).reshape(G * d, src.in_features))  # (G d, in)
                if src.bias is not None:
                    dst.bias.copy_(src.bias.view(G, r, d).mean(dim=1).reshape(G * d))  # (G d,)
        return gqa.train(mha.training)

    @torch.no_grad()
    def load_torch_weights(self, module: nn.MultiheadAttention) -> "GroupedQueryAttention":
        """Copy a :class:`torch.nn.MultiheadAttention` of the same sizes, mean-pooling its key
        and value heads into ``num_kv_heads`` groups (see :meth:`from_mha`)."""
        pooled = GroupedQueryAttention.from_mha(MultiHeadAttention.from_torch(module), self.num_kv_heads)
        self.load_state_dict(pooled.state_dict())
        self.dropout = pooled.dropout
        return self

    @classmethod
    def from_torch(cls, module: nn.MultiheadAttention, num_kv_heads: Optional[int] = None) -> "GroupedQueryAttention":
        """A new module from a :class:`torch.nn.MultiheadAttention`, its key/value heads mean-pooled
        into ``num_kv_heads`` groups (default: no pooling, ``num_kv_heads = num_heads``)."""
        mha = MultiHeadAttention.from_torch(module)
        return cls.from_mha(mha, mha.num_heads if num_kv_heads is None else num_kv_heads)

    def extra_repr(self) -> str:
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, num_kv_heads={self.num_kv_heads}"


GQA = GroupedQueryAttention  # the paper's name


def mha_to_gqa(mha: MultiHeadAttention, num_kv_heads: int) -> GroupedQueryAttention:
    """:meth:`GroupedQueryAttention.from_mha` as a function."""
    return GroupedQueryAttention.from_mha(mha, num_kv_heads)
