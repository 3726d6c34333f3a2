"""Sequential (multi-hop) attention: each hop's query is built from what the last hop read.

Multi-hop attention over a memory is the idea of end-to-end memory networks: Sukhbaatar,
Szlam, Weston & Fergus (2015), "End-To-End Memory Networks", NeurIPS, arXiv:1503.08895, whose
hop ``k`` reads ``o = sum_i p_i c_i`` with ``p = softmax(u^T m_i)`` and updates the query to
``u^{k+1} = u^k + o^k``; the stacked attention networks of Yang, He, Gao, Deng & Smola (2016),
arXiv:1511.02274 (:mod:`attnlib.multimodal.stacked_attention`), stack the same refinement over
image regions.  This module keeps the read of memory networks (scaled dot products) and makes
the query update learned, so a hop can ask for something *different* from what it found::

    a_t     = softmax_i(k_i . q_t / sqrt(D))          # (B, n): hop t's weights over the n items
    r_t     = sum_i a_t,i v_i                         # (B, Dv): what hop t read
    q_{t+1} = LN(q_t + W_t [q_t; r_t])                # (B, D): the next hop's query

with ``q_1`` the given query, ``t = 1 .. T`` hops and the final read ``r_T`` returned.  With
one hop it is plain single-query scaled dot-product attention.  What composition buys is
*chains of look-ups*: "find the item whose key is q, then the item whose key is what you found"
takes two hops, each a single look-up; one hop sees only a fixed function of q, so it cannot.
Nothing here depends on the order of the items: like set attention, it is a function of a set.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from attnlib._checks import check_floating, check_rank, shape_str
from attnlib.masks import apply_mask, check_key_mask, safe_softmax
from attnlib.record import emit

__all__ = ["SequentialAttention"]


class SequentialAttention(nn.Module):
    """``num_hops`` hops of attention by one query over a set of key/value items.

    Args:
        dim: ``D``, the size of the query and of each key.
        num_hops: ``T >= 1``; each hop after the first has its own update ``W_t`` and LayerNorm.
        value_dim: ``Dv``, the size of each value (default ``D``).

    ``forward(query (B, D), keys (B, n, D), values (B, n, Dv), key_mask (B, n) bool or None)``
    returns ``(read (B, Dv), weights (B, T, n))``: the last hop's read and every hop's weights.
    ``key_mask`` is ``True`` where an item may be attended; a row with no such item gets zero
    weights and a zero read, not NaN.  Each hop emits its weights ``(B, 1, n)`` (one query) to
    :mod:`attnlib.record`, so a recorder holds ``T`` maps per forward pass, in hop order.
    """

    def __init__(self, dim: int, num_hops: int = 2, value_dim: Optional[int] = None) -> None:
        super().__init__()
        if dim < 1:
            raise ValueError(f"dim must be positive; got {dim}")
        if num_hops < 1:
            raise ValueError(f"num_hops must be at least 1; got {num_hops}")
        self.dim, self.num_hops = dim, num_hops
        self.value_dim = dim if value_dim is None else value_dim
        self.scale = dim**-0.5
        self.updates = nn.ModuleList(nn.Linear(dim + self.value_dim, dim) for _ in range(num_hops - 1))  # W_t
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(num_hops - 1))

    def forward(
        self, query: Tensor, keys: Tensor, values: Tensor, key_mask: Optional[Tensor] = None
    ) -> tuple[Tensor, Tensor]:
        check_rank(query, "query", 2, "(B, D)")
        check_rank(keys, "keys", 3, "(B, n, D)")
        check_rank(values, "values", 3, "(B, n, Dv)")
        check_floating(query, "query")
        b, n = keys.shape[0], keys.shape[1]
        if query.shape != (b, self.dim) or keys.shape[2] != self.dim or values.shape != (b, n, self.value_dim):
            raise ValueError(
                f"query, keys, values must be (B, {self.dim}), (B, n, {self.dim}), (B, n, {self.value_dim}) "
                f"with the same B and n; got query {shape_str(query.shape)}, keys {shape_str(keys.shape)}, "
                f"values {shape_str(values.shape)}"
            )
        check_key_mask(key_mask, (b,), n)
        q = query  # (B, D)
        hops: list[Tensor] = []
        read = values.new_zeros(b, self.value_dim)
        for t in range(self.num_hops):
            scores = torch.einsum("bnd,bd->bn", keys, q) * self.scale  # (B, n)
            weights = safe_softmax(apply_mask(scores, key_mask), dim=-1)  # (B, n)
            emit(self, weights[:, None])  # (B, 1, n)
            hops.append(weights)
            read = torch.einsum("bn,bnv->bv", weights, values)  # (B, Dv)
            if t < self.num_hops - 1:
                q = self.norms[t](q + self.updates[t](torch.cat([q, read], dim=-1)))  # (B, D)
        return read, torch.stack(hops, dim=1)  # (B, Dv), (B, T, n)
