"""Sliding-window (local) attention: each query sees only the keys within a fixed distance.

Paper
-----
I. Beltagy, M. E. Peters and A. Cohan, "Longformer: The Long-Document Transformer", 2020,
arXiv:2004.05150, section 3.1 ("sliding window").  Each token attends to a window of
neighbours around it; stacking ``ℓ`` such layers lets information travel ``ℓ`` windows
far, as the receptive field of a stack of convolutions grows.  (The paper writes ``w``
for the whole window; here ``window`` is the reach on *each* side, so Longformer's
``w = 2 * window``.)

What is computed
----------------
Ordinary scaled dot-product attention restricted to the band

* ``|i - j| <= window``            (``causal=False``: ``2 * window + 1`` keys), or
* ``0 <= i - j <= window``          (``causal=True``: ``window + 1`` keys),

which is exactly full attention with the boolean mask of :func:`sliding_window_mask`.
Instead of building the ``(T, T)`` scores and masking most of them away, queries are cut
into blocks of ``b`` and each block meets only the slab of ``b + 2 * window`` keys that
can reach it (``b + window`` when causal).  Time and memory are ``O(T * (b + 2 window))``,
linear in the sequence length for a fixed window.
"""

from __future__ import annotations

from typing import Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from .._checks import check_qkv, shape_str
from ..masks import check_key_mask, resolve_scale, safe_softmax, work_dtype

__all__ = ["sliding_window_mask", "sliding_window_attention"]


def sliding_window_mask(T: int, window: int, causal: bool = False, *, device: Optional[torch.device] = None) -> Tensor:
    """The band mask of sliding-window attention.

    Args:
        T: sequence length (queries and keys are the same sequence).
        window: how far a query reaches on each side (``>= 0``).
        causal: only look back.

    Returns:
        ``(T, T)`` bool, ``True`` where query ``i`` may attend to key ``j``:
        ``|i - j| <= window``, or ``0 <= i - j <= window`` when causal.
    """
    if window < 0:
        raise ValueError(f"window must be >= 0; got {window}")
    pos = torch.arange(T, device=device)
    offset = pos[:, None] - pos[None, :]  # (T, T) i - j
    allowed = offset.abs() <= window
    return allowed & (offset >= 0) if causal else allowed  # (T, T)


def sliding_window_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    window: int,
    causal: bool = False,
    scale: Optional[float] = None,
    *,
    key_mask: Optional[Tensor] = None,
    block_size: Optional[int] = None,
    need_weights: bool = False,
) -> Union[Tensor, tuple[Tensor, Tensor]]:
    """Scaled dot-product self-attention inside a band of width ``window`` on each side.

    Equivalent to ``scaled_dot_product_attention(q, k, v, attn_mask=sliding_window_mask(T,
    window, causal) & key_mask[..., None, :])`` (tested), but computed block by block
    in ``O(T * window)`` time and memory (see the module docstring).

    Args:
        q: ``(..., T, E)`` queries, e.g. ``(B, H, T, E)``.
        k: ``(..., T, E)`` keys of the same sequence (same ``T``, batch dimensions, dtype).
        v: ``(..., T, Ev)`` values.
        window: reach on each side, ``>= 0`` (``0``: each token sees only itself).
        causal: see only the ``window`` previous tokens and itself.
        scale: multiplies ``q · k``; defaults to ``1 / sqrt(E)``.
        key_mask: optional bool, broadcastable to ``(..., T)``, ``True`` = this key may be
            attended to (e.g. :func:`attnlib.masks.lengths_to_mask` for padding).
        block_size: queries per block; defaults to ``max(window, 1)``.
        need_weights: also return the attention weights, scattered into a dense
            ``(..., T, T)`` matrix that is zero outside the band: for plots only, it costs
            the ``O(T^2)`` memory the function otherwise avoids.

    Returns:
        ``output`` ``(..., T, Ev)`` in ``q``'s dtype, or ``(output, weights)`` with
        ``need_weights``.  A query with no visible key gets zeros, never NaN.  Float16 and
        bfloat16 are computed in float32.

    Raises:
        ValueError: shapes or dtypes that do not fit (``k`` must have as many positions as
            ``q``), a negative window, a block size below 1, or a bad ``key_mask``.
    """
    check_qkv(q, k, v)
    T = q.shape[-2]
    if k.shape[-2] != T:
        raise ValueError(
            f"sliding-window attention is self-attention: q and k must have the same length T; "
            f"got q {shape_str(q.shape)}, k {shape_str(k.shape)}"
        )
    if window < 0:
        raise ValueError(f"window must be >= 0; got {window}")
    b = max(window, 1) if block_size is None else block_size
    if b < 1:
        raise ValueError(f"block_size must be >= 1; got {block_size}")
    batch = q.shape[:-2]
    check_key_mask(key_mask, tuple(batch), T)
    scale = resolve_scale(scale, q.shape[-1])
    work = work_dtype(q.dtype)
    left, right = window, (0 if causal else window)  # keys a block needs before / after it
    n_blocks = -(-T // b)
    pad_q = n_blocks * b - T
    width = b + left + right  # keys in the slab of one block

    q_blk = F.pad(q.to(work), (0, 0, 0, pad_q)).unflatten(-2, (n_blocks, b))  # (..., n, b, E)
    k_pad = F.pad(k.to(work), (0, 0, left, pad_q + right))  # (..., n*b + left + right, E)
    v_pad = F.pad(v.to(work), (0, 0, left, pad_q + right))  # (..., n*b + left + right, Ev)
    k_slab = k_pad.unfold(-2, width, b)  # (..., n, E, width): block n sees keys n*b-left .. n*b+b+right-1
    v_slab = v_pad.unfold(-2, width, b).transpose(-2, -1)  # (..., n, width, Ev)
    scores = (q_blk @ k_slab) * scale  # (..., n, b, width)

    # Which (query, slab position) pairs are in the band and inside the sequence.
    r = torch.arange(b, device=q.device)[:, None]  # (b, 1) row inside the block
    c = torch.arange(width, device=q.device)[None, :]  # (1, width) column inside the slab
    offset = c - left - r  # (b, width) j - i
    in_band = (offset >= -window) & (offset <= (0 if causal else window))  # (b, width)
    start = torch.arange(n_blocks, device=q.device)[:, None, None] * b  # (n, 1, 1)
    key_pos = start - left + c  # (n, 1, width) global key index
    allowed = in_band & (key_pos >= 0) & (key_pos < T)  # (n, b, width)
    if key_mask is not None:
        km = F.pad(key_mask.expand(*batch, T), (left, pad_q + right), value=False)  # (..., n*b + left + right)
        allowed = allowed & km.unfold(-1, width, b).unsqueeze(-2)  # (..., n, b, width)
    scores = scores.masked_fill(~allowed, float("-inf"))  # (..., n, b, width)
    weights = safe_softmax(scores, dim=-1)  # (..., n, b, width)
    out = (weights @ v_slab).flatten(-3, -2)[..., :T, :].to(q.dtype)  # (..., T, Ev)
    if not need_weights:
        return out
    dense = weights.new_zeros((*weights.shape[:-1], n_blocks * b + left + right))  # (..., n, b, n*b+left+right)
    index = (start + c).expand(n_blocks, b, width)  # (n, b, width) key j sits at column j + left
    dense = dense.scatter(-1, index.expand(weights.shape), weights)  # (..., n, b, n*b+left+right)
    dense = dense.flatten(-3, -2)[..., :T, left : left + T]  # (..., T, T)
    return out, dense.to(q.dtype)
