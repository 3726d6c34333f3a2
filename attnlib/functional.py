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

Masks
-----
One convention for the whole library, documented in :mod:`attnlib.masks`: a boolean mask
is ``True`` where a query may attend; a float mask is added to the scores; a row whose keys
are all blocked gets zero weights (and a zero output), never NaN.
:func:`~attnlib.masks.lengths_to_mask` and :func:`~attnlib.masks.causal_mask` are
re-exported here from there.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from ._checks import (
    check_dim_equal,
    check_floating,
    check_min_rank,
    check_qkv,
    check_rank,
    check_same_dtype,
    check_tensor,
    check_weight,
    shape_str,
)
from .masks import (
    apply_mask,
    blocked_rows,
    causal_mask,
    check_mask,
    resolve_scale,
    safe_softmax,
    work_dtype,
)
from .masks import (
    lengths_to_mask as lengths_to_mask,  # documented in attnlib.masks, importable from here too
)

__all__ = [
    "masked_softmax",
    "dot_score",
    "scaled_dot_score",
    "additive_score",
    "bilinear_score",
    "concat_score",
    "scaled_dot_product_attention",
]


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
    work = scores.to(work_dtype(scores.dtype))
    if temperature != 1.0:
        work = work / temperature
    if mask is not None:
        check_mask(mask, "mask", scores.shape, scores.dtype)
        work = apply_mask(work, mask)
    return safe_softmax(work, dim).to(scores.dtype)


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
    return dot_score(q, k) * resolve_scale(scale, q.shape[-1])


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
        is_causal: mask future keys (top-left aligned, see :func:`~attnlib.masks.causal_mask`); cannot be
            combined with ``attn_mask``.
        scale: defaults to ``1 / sqrt(E)``.
        need_weights: when False, call torch's fused kernel and return ``None`` weights
            (a query with no key to attend to still gets a zero output).

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
        # torch's fused kernels return NaN (or, in some versions, a mean of the values) for a
        # query that sees no key: unblock such rows for the kernel, then zero their output.
        blocked = None
        if attn_mask is not None:
            rows = blocked_rows(attn_mask)  # (..., L, 1)
            if bool(rows.any()):
                blocked = rows
                attn_mask = attn_mask | rows if attn_mask.dtype == torch.bool else attn_mask.masked_fill(rows, 0.0)
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal, scale=scale
        )  # (..., L, Ev)
        return (out.masked_fill(blocked, 0.0) if blocked is not None else out), None

    work = work_dtype(q.dtype)
    scores = (q.to(work) @ k.to(work).transpose(-2, -1)) * resolve_scale(scale, q.shape[-1])  # (..., L, S)
    if is_causal:
        attn_mask = causal_mask(L, S, device=q.device)  # (L, S)
    weights = safe_softmax(apply_mask(scores, attn_mask), dim=-1)  # (..., L, S)
    dropped = F.dropout(weights, p=dropout_p) if dropout_p > 0 else weights
    out = dropped @ v.to(work)  # (..., L, Ev)
    return out.to(q.dtype), weights.to(q.dtype)
