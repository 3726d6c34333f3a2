"""ALiBi: attention with linear biases instead of position encodings (Press, Smith & Lewis, 2022,
"Train short, test long: attention with linear biases enables input length extrapolation",
ICLR, arXiv:2108.12409, §3).

No position vector is added to the embeddings and nothing rotates the queries or keys.
Instead each head ``h`` subtracts from every score a penalty proportional to how far the
key lies from the query::

    scores_h[i, j] = q_i . k_j / sqrt(d)  -  m_h * (i - j)        (j <= i, causal)

The slopes ``m_h`` are fixed, not learned: for ``n`` heads (``n`` a power of two) they form
the geometric sequence that starts at ``2^(-8/n)`` and has that same ratio, so 8 heads get
``1/2, 1/4, ..., 1/256`` and 16 heads ``1/sqrt(2), 1/2, ..., 1/256``.  A head with a large
slope looks mostly at its nearest neighbours; one with a small slope looks far back.  For
other head counts the authors' code takes the slopes of the closest lower power of two and
adds every other slope of the next power of two (:func:`alibi_slopes`).

Because the penalty depends on the distance ``i - j`` only, a model trained on sequences of
length ``L`` meets no unseen position vector on longer ones: the paper's claim is that it
extrapolates.  The bias is an ordinary additive mask in attnlib's convention
(:mod:`attnlib.masks`), so it combines with the causal and padding masks through
:func:`~attnlib.masks.combine_masks` and goes straight into
:func:`attnlib.functional.scaled_dot_product_attention`.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor

__all__ = ["alibi_slopes", "alibi_bias"]


def _geometric_slopes(n: int) -> list[float]:
    """``2^(-8/n), 2^(-16/n), ..., 2^(-8)``: the slopes for ``n`` heads, ``n`` a power of two."""
    return [2.0 ** (-8.0 * (h + 1) / n) for h in range(n)]


def alibi_slopes(num_heads: int) -> Tensor:
    """The fixed per-head slopes ``m_h`` of ALiBi.

    For ``n = num_heads`` a power of two: ``m_h = 2^(-8 (h + 1) / n)``, ``h = 0 .. n-1``.
    Otherwise, with ``p`` the largest power of two below ``n``: the ``p`` slopes for ``p`` heads,
    followed by slopes ``0, 2, 4, ...`` (every other one) of the ``2p`` slopes for ``2p`` heads,
    ``n - p`` of them (the rule of the paper's reference code).  For 6 heads that gives
    ``1/4, 1/16, 1/64, 1/256`` and then ``1/2, 1/8``.

    Args:
        num_heads: ``H >= 1``.

    Returns:
        ``(H,)`` float32, all in ``(0, 1)``.

    Raises:
        ValueError: ``num_heads < 1``.
    """
    if num_heads < 1:
        raise ValueError(f"num_heads must be >= 1; got {num_heads}")
    lower = 2 ** int(math.floor(math.log2(num_heads)))  # largest power of two <= H
    slopes = _geometric_slopes(lower)
    if lower < num_heads:
        slopes += _geometric_slopes(2 * lower)[0::2][: num_heads - lower]
    return torch.tensor(slopes, dtype=torch.float32)  # (H,)


def alibi_bias(
    num_heads: int,
    query_len: int,
    key_len: Optional[int] = None,
    offset: int = 0,
    *,
    device: Optional[torch.device] = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """The additive ALiBi mask ``-m_h * |i - j|`` for every head, query and key.

    Query ``i`` sits at position ``offset + i`` and key ``j`` at position ``j``, the same
    alignment as :func:`attnlib.masks.causal_mask` (with a KV cache that holds ``offset``
    tokens, ``key_len = offset + query_len``).  The paper's models are causal: combine the
    bias with ``causal_mask(query_len, key_len, offset=offset)``, which removes the entries
    with ``j > i``; without it those keys get the mirror-image penalty ``-m_h (j - i)``.

    Args:
        num_heads: ``H``; the slopes are :func:`alibi_slopes` ``(H)``.
        query_len: ``L``.
        key_len: ``S``; defaults to ``offset + query_len``.
        offset: the position of the first query (``>= 0``).
        device, dtype: of the result (the scores' dtype, for use as a float mask).

    Returns:
        ``(H, L, S)``, ``0`` on the diagonal ``j = offset + i`` and more negative with the
        distance; index it as ``bias[None]`` for scores ``(B, H, L, S)``.

    Raises:
        ValueError: a negative length or offset, or fewer than one head.
    """
    key_len = offset + query_len if key_len is None else key_len
    if min(query_len, key_len, offset) < 0:
        raise ValueError(
            f"lengths and offset must be >= 0; got query_len={query_len}, key_len={key_len}, offset={offset}"
        )
    slopes = alibi_slopes(num_heads).to(device=device, dtype=torch.float64)  # (H,)
    query_pos = torch.arange(offset, offset + query_len, device=device, dtype=torch.float64)  # (L,)
    key_pos = torch.arange(key_len, device=device, dtype=torch.float64)  # (S,)
    distance = (query_pos[:, None] - key_pos[None, :]).abs()  # (L, S)
    return (-slopes[:, None, None] * distance[None]).to(dtype)  # (H, L, S)
