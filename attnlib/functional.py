"""Attention as plain functions: masked softmax, scoring functions, scaled dot-product attention.

Notation used throughout attnlib
--------------------------------
``L`` queries attend over ``S`` keys.  A query has ``E`` features, a key ``E`` (or ``Ek``
for scores with parameters), a value ``Ev``.  Leading dimensions ``...`` are batch
dimensions (for multi-head attention ``(B, H)``: batch first, heads second).

=============  ================  ==============================================
tensor         shape             meaning
=============  ================  ==============================================
``q``          ``(..., L, E)``   queries
``k``          ``(..., S, E)``   keys
``v``          ``(..., S, Ev)``  values
scores         ``(..., L, S)``   one score per (query, key) pair
weights        ``(..., L, S)``   softmax of the scores over the last axis (keys)
output         ``(..., L, Ev)``  ``weights @ v``: one weighted average per query
=============  ================  ==============================================

The mask convention (one for the whole library)
-----------------------------------------------
A mask broadcasts to the scores' shape ``(..., L, S)`` and comes in one of two kinds,
exactly as in :func:`torch.nn.functional.scaled_dot_product_attention`:

* **boolean**: ``True`` means *this query may attend to this key*; ``False`` blocks it.
* **float** (same dtype as the scores): *added* to the scores before the softmax, so
  ``0.0`` leaves a pair alone and ``float("-inf")`` blocks it.

A row whose keys are all blocked gets all-zero weights (and so a zero output), never NaN.
Blocked scores are set to ``-inf``, never to a large negative constant such as ``-1e9``,
which overflows to ``-inf`` in float16 anyway.  Where a PyTorch API uses the opposite
convention (``key_padding_mask`` of :class:`torch.nn.MultiheadAttention`, where ``True``
means *padding*), attnlib translates at that boundary and says so in the docstring.

Helpers :func:`lengths_to_mask` and :func:`causal_mask` build the two common masks.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from ._checks import (
    check_dim_equal,
    check_floating,
    check_mask,
    check_min_rank,
    check_qkv,
    check_rank,
    check_same_dtype,
    check_tensor,
    check_weight,
    shape_str,
)

__all__ = [
    "lengths_to_mask",
    "causal_mask",
    "masked_softmax",
    "dot_score",
    "scaled_dot_score",
    "additive_score",
    "bilinear_score",
    "concat_score",
    "scaled_dot_product_attention",
]

_LOW_PRECISION = (torch.float16, torch.bfloat16)


# ----------------------------------------------------------------------------- masks
def lengths_to_mask(lengths: Tensor, max_len: Optional[int] = None) -> Tensor:
    """Boolean padding mask from sequence lengths.

    Args:
        lengths: ``(B,)`` integer tensor, the number of valid (non-padding) positions.
        max_len: ``T``, the padded length; defaults to ``lengths.max()``.

    Returns:
        ``(B, T)`` bool, ``True`` at valid positions.  To mask keys in scores of shape
        ``(B, L, S)``, index it as ``mask[:, None, :]``; for ``(B, H, L, S)`` use
        ``mask[:, None, None, :]`` (the padding mask goes on the *key* axis).

    Raises:
        ValueError: ``lengths`` is not 1-D integer, is negative, or exceeds ``max_len``.
    """
    check_rank(lengths, "lengths", 1, "(B,)")
    if torch.is_floating_point(lengths) or lengths.dtype == torch.bool:
        raise ValueError(f"lengths must be an integer tensor; got dtype {lengths.dtype}")
    longest = int(lengths.max()) if lengths.numel() else 0
    if max_len is None:
        max_len = longest
    if lengths.numel() and (int(lengths.min()) < 0 or longest > max_len):
        raise ValueError(f"lengths must lie in [0, max_len={max_len}]; got {lengths.tolist()}")
    positions = torch.arange(max_len, device=lengths.device)  # (T,)
    return positions[None, :] < lengths[:, None]  # (B, T)


def causal_mask(query_len: int, key_len: Optional[int] = None, *, device: Optional[torch.device] = None) -> Tensor:
    """Boolean causal mask: query ``i`` may attend to keys ``0..i``.

    Aligned at the top left, like ``is_causal=True`` of
    :func:`torch.nn.functional.scaled_dot_product_attention` (when ``L != S`` query ``i``
    still sees keys ``0..i``).

    Returns:
        ``(L, S)`` bool, lower-triangular ``True``.
    """
    key_len = query_len if key_len is None else key_len
    return torch.ones(query_len, key_len, dtype=torch.bool, device=device).tril()  # (L, S)


# ----------------------------------------------------------------------------- softmax
def masked_softmax(
    scores: Tensor,
    mask: Optional[Tensor] = None,
    *,
    dim: int = -1,
    temperature: float = 1.0,
) -> Tensor:
    """Softmax of ``scores / temperature`` that ignores masked entries.

    Args:
        scores: ``(..., L, S)`` floating point (any shape when ``dim`` is given).
        mask: boolean (``True`` = keep) or additive float mask broadcastable to
            ``scores`` (see the module docstring).
        dim: the axis to normalise over (the keys).
        temperature: ``> 0``.  Small values sharpen the weights towards the arg-max
            (hard attention), large values flatten them towards uniform.

    Returns:
        Weights with the shape and dtype of ``scores``, summing to 1 along ``dim`` except
        in rows where every entry is masked, which are all zero (never NaN).  Float16 and
        bfloat16 scores are normalised in float32.

    Raises:
        ValueError: non-float scores, a non-positive temperature, or a mask of the wrong
            dtype or shape.
    """
    check_tensor(scores, "scores")
    check_floating(scores, "scores")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0; got {temperature}")
    work = scores.float() if scores.dtype in _LOW_PRECISION else scores
    if temperature != 1.0:
        work = work / temperature
    if mask is not None:
        check_mask(mask, "mask", scores.shape, scores.dtype)
        if mask.dtype == torch.bool:
            work = work.masked_fill(~mask, float("-inf"))
        else:
            work = work + mask.to(work.dtype)
    return _softmax_zero_blocked_rows(work, dim).to(scores.dtype)


def _softmax_zero_blocked_rows(scores: Tensor, dim: int) -> Tensor:
    """Softmax along ``dim`` where a row of only ``-inf`` gives zeros instead of NaN."""
    blocked = torch.isneginf(scores).all(dim=dim, keepdim=True)  # rows with nothing to attend to
    if not bool(blocked.any()):
        return torch.softmax(scores, dim=dim)
    # Replace such rows by zeros before the softmax (so no NaN appears, not even in the
    # backward pass), then zero their weights.
    weights = torch.softmax(scores.masked_fill(blocked, 0.0), dim=dim)
    return weights.masked_fill(blocked, 0.0)


# ----------------------------------------------------------------------------- scores
def _check_qk(q: Tensor, k: Tensor) -> None:
    check_min_rank(q, "q", 2, "(..., L, E)")
    check_min_rank(k, "k", 2, "(..., S, E)")
    check_floating(q, "q")
    check_same_dtype({"q": q, "k": k})
    if q.dim() != k.dim() or q.shape[:-2] != k.shape[:-2]:
        raise ValueError(
            f"q and k must have the same batch dimensions (...): q has shape {shape_str(q.shape)}, "
            f"k has shape {shape_str(k.shape)}"
        )


def dot_score(q: Tensor, k: Tensor) -> Tensor:
    """Dot-product score ``q · k`` (Luong et al., 2015, "dot").

    Args:
        q: ``(..., L, E)`` queries.
        k: ``(..., S, E)`` keys.

    Returns:
        ``(..., L, S)`` scores.
    """
    _check_qk(q, k)
    check_dim_equal(q, "q", -1, k, "k", -1, "the feature size E (last dimension)")
    return q @ k.transpose(-2, -1)  # (..., L, S)


def scaled_dot_score(q: Tensor, k: Tensor, scale: Optional[float] = None) -> Tensor:
    """Scaled dot-product score ``q · k / sqrt(E)`` (Vaswani et al., 2017).

    With queries and keys of unit-variance entries, ``q · k`` has variance ``E``; the
    scale brings it back to 1 so the softmax does not saturate as ``E`` grows.

    Args:
        q: ``(..., L, E)`` queries.
        k: ``(..., S, E)`` keys.
        scale: multiplies the dot products; defaults to ``1 / sqrt(E)``.

    Returns:
        ``(..., L, S)`` scores.
    """
    scores = dot_score(q, k)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    return scores * scale


def additive_score(q: Tensor, k: Tensor, w_q: Tensor, w_k: Tensor, v: Tensor) -> Tensor:
    """Additive score ``v · tanh(W_q q + W_k k)`` (Bahdanau et al., 2015, eq. in appendix A.1.2).

    In the paper ``q`` is the previous decoder state ``s_{i-1}`` and ``k`` an annotation
    ``h_j``: ``e_ij = v_a^T tanh(W_a s_{i-1} + U_a h_j)``, with no bias.

    Args:
        q: ``(..., L, Eq)`` queries.
        k: ``(..., S, Ek)`` keys.
        w_q: ``(Hd, Eq)`` query projection (``W_a``).
        w_k: ``(Hd, Ek)`` key projection (``U_a``).
        v: ``(Hd,)`` output vector (``v_a``).

    Returns:
        ``(..., L, S)`` scores.
    """
    _check_qk(q, k)
    check_rank(v, "v", 1, "(Hd,)")
    hidden = v.shape[0]
    check_weight(w_q, "w_q", (hidden, q.shape[-1]))
    check_weight(w_k, "w_k", (hidden, k.shape[-1]))
    q_proj = q @ w_q.T  # (..., L, Hd)
    k_proj = k @ w_k.T  # (..., S, Hd)
    features = torch.tanh(q_proj.unsqueeze(-2) + k_proj.unsqueeze(-3))  # (..., L, S, Hd)
    return features @ v  # (..., L, S)


def bilinear_score(q: Tensor, k: Tensor, w: Tensor) -> Tensor:
    """Bilinear ("general") score ``q^T W k`` (Luong et al., 2015).

    Args:
        q: ``(..., L, Eq)`` queries (Luong: the current target state ``h_t``).
        k: ``(..., S, Ek)`` keys (Luong: source states ``h_s``).
        w: ``(Eq, Ek)`` the matrix ``W_a``.

    Returns:
        ``(..., L, S)`` scores.
    """
    _check_qk(q, k)
    check_weight(w, "w", (q.shape[-1], k.shape[-1]))
    return (q @ w) @ k.transpose(-2, -1)  # (..., L, Ek) @ (..., Ek, S) -> (..., L, S)


def concat_score(q: Tensor, k: Tensor, w: Tensor, v: Tensor) -> Tensor:
    """Concat score ``v · tanh(W [q; k])`` (Luong et al., 2015).

    Written as in the paper: every (query, key) pair is concatenated, which costs
    ``L * S * (Eq + Ek)`` memory.  Splitting ``W = [W_q, W_k]`` gives
    ``W [q; k] = W_q q + W_k k``, so this is the additive score under another name: see
    :func:`additive_score`, which never builds the pairs.

    Args:
        q: ``(..., L, Eq)`` queries.
        k: ``(..., S, Ek)`` keys.
        w: ``(Hd, Eq + Ek)`` the matrix ``W_a``.
        v: ``(Hd,)`` the vector ``v_a``.

    Returns:
        ``(..., L, S)`` scores.
    """
    _check_qk(q, k)
    check_rank(v, "v", 1, "(Hd,)")
    hidden = v.shape[0]
    check_weight(w, "w", (hidden, q.shape[-1] + k.shape[-1]))
    L, S = q.shape[-2], k.shape[-2]
    q_pairs = q.unsqueeze(-2).expand(*q.shape[:-1], S, q.shape[-1])  # (..., L, S, Eq)
    k_pairs = k.unsqueeze(-3).expand(*k.shape[:-2], L, S, k.shape[-1])  # (..., L, S, Ek)
    pairs = torch.cat([q_pairs, k_pairs], dim=-1)  # (..., L, S, Eq + Ek)
    return torch.tanh(pairs @ w.T) @ v  # (..., L, S)


# ----------------------------------------------------------------------------- attention
def scaled_dot_product_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    attn_mask: Optional[Tensor] = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: Optional[float] = None,
    *,
    need_weights: bool = True,
) -> tuple[Tensor, Optional[Tensor]]:
    """Scaled dot-product attention that also returns its weights.

    Same arguments and same output as :func:`torch.nn.functional.scaled_dot_product_attention`
    (tested to agree to 1e-6 in float32), plus the attention weights, which torch's fused
    kernels never return.  Equivalent to::

        scores = q @ k.transpose(-2, -1) * scale          # (..., L, S)
        scores = scores.masked_fill(~mask, -inf)          # boolean mask, or scores + mask
        weights = softmax(scores, dim=-1)                 # rows of blocked keys -> 0
        output = dropout(weights, dropout_p) @ v          # (..., L, Ev)

    Args:
        q: ``(..., L, E)`` queries, e.g. ``(B, H, L, E)`` with heads or ``(B, L, E)``.
        k: ``(..., S, E)`` keys, same batch dimensions and dtype as ``q``.
        v: ``(..., S, Ev)`` values.
        attn_mask: boolean (``True`` = may attend) or additive float mask broadcastable to
            ``(..., L, S)``; see the module docstring.
        dropout_p: probability of zeroing an attention weight (the kept ones are scaled
            by ``1 / (1 - dropout_p)``); applied whenever ``> 0``, as in torch, so pass
            ``0.0`` at evaluation time.
        is_causal: mask future keys (top-left aligned, see :func:`causal_mask`); cannot be
            combined with ``attn_mask``.
        scale: defaults to ``1 / sqrt(E)``.
        need_weights: when False, call torch's fused kernel and return ``None`` weights.

    Returns:
        ``(output, weights)``: output ``(..., L, Ev)`` in ``q``'s dtype and weights
        ``(..., L, S)`` *before* dropout (the distribution, which is what one plots), or
        ``None``.  A query whose keys are all blocked gets zero weights and a zero output.
        Float16/bfloat16 scores and softmax are computed in float32, so large logits stay
        finite.

    Raises:
        ValueError: wrong rank, mismatched batch/feature/length dimensions, mixed dtypes,
            a mask of the wrong dtype or shape, ``is_causal`` with ``attn_mask``, or
            ``dropout_p`` outside ``[0, 1)``.
    """
    check_qkv(q, k, v)
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"dropout_p must lie in [0, 1); got {dropout_p}")
    if is_causal and attn_mask is not None:
        raise ValueError("pass either attn_mask or is_causal=True, not both (combine them into one mask)")
    L, S = q.shape[-2], k.shape[-2]
    scores_shape = (*q.shape[:-1], S)  # (..., L, S)
    if attn_mask is not None:
        check_mask(attn_mask, "attn_mask", scores_shape, q.dtype)

    if not need_weights:
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal, scale=scale
        )
        return out, None

    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    work_dtype = torch.float32 if q.dtype in _LOW_PRECISION else q.dtype
    scores = (q.to(work_dtype) @ k.to(work_dtype).transpose(-2, -1)) * scale  # (..., L, S)
    if is_causal:
        attn_mask = causal_mask(L, S, device=q.device)  # (L, S)
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attn_mask, float("-inf"))
        else:
            scores = scores + attn_mask.to(work_dtype)
    weights = _softmax_zero_blocked_rows(scores, dim=-1)  # (..., L, S)
    dropped = F.dropout(weights, p=dropout_p) if dropout_p > 0 else weights
    out = dropped @ v.to(work_dtype)  # (..., L, Ev)
    return out.to(q.dtype), weights.to(q.dtype)
