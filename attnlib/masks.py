"""The mask toolkit: one convention, and every helper that builds, checks or applies a mask.

The mask convention (one for the whole library)
-----------------------------------------------
A mask broadcasts to the scores' shape ``(..., L, S)`` (``L`` queries, ``S`` keys) and comes
in one of two kinds, exactly as in :func:`torch.nn.functional.scaled_dot_product_attention`:

* **boolean**: ``True`` means *this query may attend to this key*; ``False`` blocks it.
* **float** (same dtype as the scores): *added* to the scores before the softmax, so
  ``0.0`` leaves a pair alone and ``float("-inf")`` blocks it.

A row whose keys are all blocked gets all-zero weights (and so a zero output), never NaN:
:func:`safe_softmax` is the softmax that keeps that promise.  Blocked scores are set to
``-inf``, never to a large negative constant such as ``-1e9``, which overflows to ``-inf``
in float16 anyway.  Where a PyTorch API uses the opposite convention (``key_padding_mask``
of :class:`torch.nn.MultiheadAttention`, where ``True`` means *padding*), attnlib translates
at that boundary and says so in the docstring.

What is here
------------
* building masks: :func:`lengths_to_mask` (padding), :func:`causal_mask` (with a query
  offset, for a KV cache);
* checking them: :func:`check_mask` (any attention mask), :func:`check_key_mask` (a
  boolean mask over keys only, for the mechanisms that take no ``(L, S)`` mask);
* combining and applying them: :func:`combine_masks` (boolean masks are intersected, any
  additive one turns the result additive), :func:`apply_mask`, :func:`blocked_rows`;
* the softmax that zeroes blocked rows, :func:`safe_softmax`;
* two numeric defaults every attention function shares: :func:`work_dtype` (float16 and
  bfloat16 scores are computed in float32) and :func:`resolve_scale` (``1 / sqrt(E)``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Optional

import torch
from torch import Tensor

from ._checks import check_mask, check_rank, check_tensor, shape_str

__all__ = [
    "LOW_PRECISION",
    "lengths_to_mask",
    "causal_mask",
    "check_mask",
    "check_key_mask",
    "combine_masks",
    "apply_mask",
    "blocked_rows",
    "safe_softmax",
    "work_dtype",
    "resolve_scale",
]

LOW_PRECISION = (torch.float16, torch.bfloat16)
"""Dtypes whose scores and softmax attnlib computes in float32."""


# ----------------------------------------------------------------------------- numeric defaults
def work_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype scores are computed in: float32 for float16/bfloat16, else ``dtype`` itself."""
    return torch.float32 if dtype in LOW_PRECISION else dtype


def resolve_scale(scale: Optional[float], head_dim: int) -> float:
    """``scale`` if given, else ``1 / sqrt(head_dim)`` (Vaswani et al. 2017)."""
    return 1.0 / math.sqrt(head_dim) if scale is None else scale


# ----------------------------------------------------------------------------- building
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


def causal_mask(
    query_len: int, key_len: Optional[int] = None, *, offset: int = 0, device: Optional[torch.device] = None
) -> Tensor:
    """Boolean causal mask: query ``i`` sits at position ``offset + i`` and may attend to keys
    ``0 .. offset + i``.

    With ``offset = 0`` the mask is aligned at the top left, like ``is_causal=True`` of
    :func:`torch.nn.functional.scaled_dot_product_attention` (when ``L != S`` query ``i``
    still sees keys ``0..i``).  With a KV cache that already holds ``offset`` tokens, the
    ``L`` new queries are positions ``offset .. offset + L - 1`` and the keys are all
    ``S = offset + L`` tokens so far: ``causal_mask(L, S, offset=offset)``.

    Returns:
        ``(L, S)`` bool.

    Raises:
        ValueError: a negative length or offset.
    """
    key_len = query_len if key_len is None else key_len
    if min(query_len, key_len, offset) < 0:
        raise ValueError(
            f"lengths and offset must be >= 0; got query_len={query_len}, key_len={key_len}, offset={offset}"
        )
    query_pos = torch.arange(offset, offset + query_len, device=device)  # (L,)
    return torch.arange(key_len, device=device)[None, :] <= query_pos[:, None]  # (L, S)


# ----------------------------------------------------------------------------- checking
def check_key_mask(key_mask: Optional[Tensor], batch: tuple[int, ...], num_keys: int) -> None:
    """A mask over keys only: boolean, ``True`` = may be attended, broadcastable to ``(..., S)``.

    Raises:
        ValueError: not a bool tensor, or a shape that does not broadcast to ``(*batch, S)``.
    """
    if key_mask is None:
        return
    check_tensor(key_mask, "key_mask")
    target = (*batch, num_keys)
    ok = key_mask.dtype == torch.bool
    try:
        ok = ok and tuple(torch.broadcast_shapes(tuple(key_mask.shape), target)) == target
    except RuntimeError:
        ok = False
    if not ok:
        raise ValueError(
            f"key_mask must be torch.bool broadcastable to {shape_str(target)} = (..., S keys); "
            f"got dtype {key_mask.dtype}, shape {shape_str(key_mask.shape)}"
        )


# ----------------------------------------------------------------------------- combining, applying
def combine_masks(masks: Mapping[str, Optional[Tensor]], dtype: torch.dtype) -> Optional[Tensor]:
    """One mask that blocks whatever any of ``masks`` blocks.

    Args:
        masks: name -> mask (or ``None``, skipped); the names appear in error messages.
            Each is boolean (``True`` = may attend) or float of ``dtype`` (added to the
            scores); they must broadcast together.
        dtype: the scores' dtype.

    Returns:
        ``None`` when every mask is ``None``; the logical AND when all are boolean;
        otherwise the sum of the additive forms (a boolean ``False`` becomes ``-inf``).

    Raises:
        ValueError: a mask that is neither boolean nor of ``dtype``.
    """
    given = {name: m for name, m in masks.items() if m is not None}
    for name, m in given.items():
        check_tensor(m, name)
        if m.dtype != torch.bool and m.dtype != dtype:
            raise ValueError(
                f"{name} must be torch.bool (True = may attend) or a float tensor of the scores' dtype {dtype} "
                f"(added to the scores); got dtype {m.dtype}"
            )
    if not given:
        return None
    parts = list(given.values())
    if all(m.dtype == torch.bool for m in parts):
        combined = parts[0]
        for m in parts[1:]:
            combined = combined & m  # broadcast
        return combined
    total: Tensor = torch.zeros((), dtype=dtype, device=parts[0].device)
    for m in parts:
        total = total + (m if m.dtype != torch.bool else torch.zeros_like(m, dtype=dtype).masked_fill(~m, -math.inf))
    return total


def apply_mask(scores: Tensor, mask: Optional[Tensor], *, inplace: bool = False) -> Tensor:
    """Scores with ``mask`` applied: ``-inf`` where a boolean mask is ``False``, or the float
    mask added (in the scores' dtype).  ``inplace`` writes into ``scores`` where it can
    (a boolean mask; an additive one that does not broadcast ``scores`` to a bigger shape)."""
    if mask is None:
        return scores
    if mask.dtype == torch.bool:
        return scores.masked_fill_(~mask, float("-inf")) if inplace else scores.masked_fill(~mask, float("-inf"))
    additive = mask.to(scores.dtype)
    if inplace and torch.broadcast_shapes(scores.shape, additive.shape) == scores.shape:
        return scores.add_(additive)
    return scores + additive


def blocked_rows(mask: Tensor) -> Tensor:
    """``(..., L, 1)`` bool: the queries that ``mask`` lets see no key at all."""
    allowed = mask if mask.dtype == torch.bool else ~torch.isneginf(mask)
    return ~allowed.any(dim=-1, keepdim=True)


# ----------------------------------------------------------------------------- softmax
def safe_softmax(scores: Tensor, dim: int = -1) -> Tensor:
    """Softmax along ``dim`` where a row of only ``-inf`` gives zeros instead of NaN.

    Such rows are replaced by zeros *before* the softmax (so no NaN appears, not even in the
    backward pass), and their weights are zeroed afterwards.
    """
    blocked = torch.isneginf(scores).all(dim=dim, keepdim=True)  # rows with nothing to attend to
    if not bool(blocked.any()):
        return torch.softmax(scores, dim=dim)
    weights = torch.softmax(scores.masked_fill(blocked, 0.0), dim=dim)
    return weights.masked_fill(blocked, 0.0)
