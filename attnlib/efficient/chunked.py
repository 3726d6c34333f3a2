"""Chunked attention with an online softmax: exact attention in memory linear in N.

Papers
------
* M. Milakov and N. Gimelshein, "Online normalizer calculation for softmax", 2018,
  arXiv:1805.02867: the softmax normaliser can be computed in one pass by keeping a
  running maximum and rescaling the running sum whenever the maximum grows.
* M. N. Rabe and C. Staats, "Self-attention Does Not Need O(n^2) Memory", 2021,
  arXiv:2112.05682: apply that running normaliser to attention, over chunks of keys and
  values, so that no ``(L, S)`` matrix is ever stored.
* T. Dao, D. Y. Fu, S. Ermon, A. Rudra and C. Ré, "FlashAttention: Fast and
  Memory-Efficient Exact Attention with IO-Awareness", NeurIPS 2022, arXiv:2205.14135:
  the same recurrence over (query block, key block) tiles, fused into one GPU kernel
  (Algorithm 1).

What is computed
----------------
For one query ``q`` with scores ``s_j = scale * q · k_j`` over the keys ``j``, attention is
``o = sum_j exp(s_j) v_j / sum_j exp(s_j)``.  Visit the keys block by block; after block
``t`` keep, per query,

* ``m_t = max(m_{t-1}, max_{j in t} s_j)``                         the running maximum,
* ``l_t = exp(m_{t-1} - m_t) l_{t-1} + sum_{j in t} exp(s_j - m_t)``  the running normaliser,
* ``a_t = exp(m_{t-1} - m_t) a_{t-1} + sum_{j in t} exp(s_j - m_t) v_j``  the running numerator,

starting from ``m_0 = -inf``, ``l_0 = 0``, ``a_0 = 0``.  After the last block ``o = a / l``
exactly (the factors ``exp(-m)`` cancel), and ``m + log l`` is the log-sum-exp of the
scores.  Each step touches one ``(chunk_q, chunk_k)`` block of scores, so the extra memory
is ``O(chunk_q * chunk_k)`` per batch element and head instead of ``O(L * S)``.

This is plain PyTorch, not a fused kernel: every block still makes a round trip through
main memory and the Python loop runs ``ceil(L / chunk) * ceil(S / chunk)`` times.  Torch's
own :func:`torch.nn.functional.scaled_dot_product_attention` runs the same algorithm in
compiled code and is faster; this file is here to show the algorithm.

Memory is linear in ``N`` for inference (under :func:`torch.no_grad`).  Gradients are
exact (autograd runs through the loop), but autograd keeps every block's weights for the
backward pass, so a training step stores ``O(L * S)`` again; FlashAttention avoids that by
recomputing each block in its backward pass from ``q``, ``k`` and the log-sum-exp (which
``return_lse`` returns), and Rabe & Staats by gradient checkpointing.  It never forms the
attention weights, so it has nothing to hand to :func:`attnlib.record.emit`: use
:func:`attnlib.functional.scaled_dot_product_attention` to look at maps.
"""

from __future__ import annotations

from typing import Optional, Union

import torch
from torch import Tensor

from .._checks import check_qkv
from ..masks import apply_mask, check_mask, resolve_scale, work_dtype

__all__ = ["chunked_attention"]


def _mask_block(mask: Tensor, i0: int, i1: int, j0: int, j1: int) -> Tensor:
    """Rows ``i0:i1`` and columns ``j0:j1`` of a mask that may broadcast (size 1) on either axis."""
    rows = slice(None) if mask.shape[-2] == 1 else slice(i0, i1)
    cols = slice(None) if mask.shape[-1] == 1 else slice(j0, j1)
    return mask[..., rows, cols]  # (..., cq or 1, ck or 1)


def _block_causal_mask(i0: int, i1: int, j0: int, j1: int, device: torch.device) -> Tensor:
    """``(cq, ck)`` bool: query ``i`` (rows ``i0:i1``) may see key ``j`` (columns ``j0:j1``) when ``j <= i``."""
    rows = torch.arange(i0, i1, device=device)[:, None]  # (cq, 1)
    cols = torch.arange(j0, j1, device=device)[None, :]  # (1, ck)
    return cols <= rows


def chunked_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    attn_mask: Optional[Tensor] = None,
    is_causal: bool = False,
    scale: Optional[float] = None,
    *,
    chunk_size: int = 512,
    key_chunk_size: Optional[int] = None,
    return_lse: bool = False,
) -> Union[Tensor, tuple[Tensor, Tensor]]:
    """Exact scaled dot-product attention over blocks of queries and keys (online softmax).

    Same arguments (without dropout) and same output as
    :func:`torch.nn.functional.scaled_dot_product_attention`, tested to agree to 1e-5 in
    float32, but the ``(L, S)`` score and weight matrices are never stored: only one
    ``(chunk_size, key_chunk_size)`` block at a time (see the module docstring).
    Equivalent to::

        weights = softmax(q @ k.transpose(-2, -1) * scale + mask, dim=-1)   # (..., L, S)
        output = weights @ v                                                # (..., L, Ev)

    With ``is_causal=True`` the key blocks that lie entirely in a query block's future are
    skipped, which halves the work.

    Args:
        q: ``(..., L, E)`` queries, e.g. ``(B, H, L, E)``.
        k: ``(..., S, E)`` keys, same batch dimensions and dtype as ``q``.
        v: ``(..., S, Ev)`` values.
        attn_mask: boolean (``True`` = may attend) or additive float mask broadcastable to
            ``(..., L, S)`` (the convention of :mod:`attnlib.functional`).  It is read one
            block at a time; a mask that broadcasts over rows (``(..., 1, S)``) costs no
            ``(L, S)`` memory.
        is_causal: query ``i`` sees keys ``0..i`` (top-left aligned); not with ``attn_mask``.
        scale: multiplies ``q · k``; defaults to ``1 / sqrt(E)``.
        chunk_size: queries per block.
        key_chunk_size: keys per block; defaults to ``chunk_size``.
        return_lse: also return the log-sum-exp of each query's (masked, scaled) scores.

    Returns:
        ``output`` of shape ``(..., L, Ev)`` in ``q``'s dtype; with ``return_lse`` the pair
        ``(output, lse)`` where ``lse`` is ``(..., L)`` in float32 (float64 for float64
        input).  A query whose keys are all blocked gets a zero output and ``lse = -inf``,
        never NaN.  Float16 and bfloat16 are computed block by block in float32.

    Raises:
        ValueError: wrong rank, mismatched batch/feature/length dimensions, mixed dtypes,
            a mask of the wrong dtype or shape, ``is_causal`` with ``attn_mask``, or a
            chunk size below 1.
    """
    check_qkv(q, k, v)
    key_chunk_size = chunk_size if key_chunk_size is None else key_chunk_size
    if chunk_size < 1 or key_chunk_size < 1:
        raise ValueError(f"chunk sizes must be >= 1; got chunk_size={chunk_size}, key_chunk_size={key_chunk_size}")
    if is_causal and attn_mask is not None:
        raise ValueError("pass either attn_mask or is_causal=True, not both (combine them into one mask)")
    L, S = q.shape[-2], k.shape[-2]
    batch = q.shape[:-2]
    if attn_mask is not None:
        check_mask(attn_mask, "attn_mask", (*batch, L, S), q.dtype)
        while attn_mask.dim() < 2:  # a (S,) mask broadcasts over the query axis
            attn_mask = attn_mask.unsqueeze(0)
    scale = resolve_scale(scale, q.shape[-1])
    work = work_dtype(q.dtype)
    Ev = v.shape[-1]

    outputs, lses = [], []
    for i0 in range(0, L, chunk_size):
        i1 = min(i0 + chunk_size, L)
        q_blk = q[..., i0:i1, :].to(work) * scale  # (..., cq, E), scaled once per block
        m = q_blk.new_full((*batch, i1 - i0), float("-inf"))  # (..., cq) running maximum
        l = q_blk.new_zeros((*batch, i1 - i0))  # (..., cq) running normaliser
        acc = q_blk.new_zeros((*batch, i1 - i0, Ev))  # (..., cq, Ev) running numerator
        last_key = min(S, i1) if is_causal else S  # later keys are in every query's future
        for j0 in range(0, last_key, key_chunk_size):
            j1 = min(j0 + key_chunk_size, last_key)
            s = q_blk @ k[..., j0:j1, :].to(work).transpose(-2, -1)  # (..., cq, ck)
            if is_causal and j1 - 1 > i0:  # block crosses the diagonal
                # queries i0..i1-1 against keys j0..j1-1: a causal mask offset by i0 - j0
                s = apply_mask(s, _block_causal_mask(i0, i1, j0, j1, q.device), inplace=True)  # (..., cq, ck)
            elif attn_mask is not None:
                blk = _mask_block(attn_mask, i0, i1, j0, j1)  # (..., cq or 1, ck or 1)
                s = apply_mask(s, blk, inplace=True)  # (..., cq, ck); may broadcast up to the mask's batch shape
            # The running maximum only keeps exp() in range; it cancels in a / l, so no
            # gradient needs to flow through it.
            m_new = torch.maximum(m, s.detach().amax(dim=-1))  # (..., cq)
            # Rows with no visible key so far have m_new = -inf: shift them by 0 instead,
            # so exp(-inf - 0) = 0 rather than exp(-inf + inf) = NaN.
            shift = torch.where(torch.isneginf(m_new), torch.zeros_like(m_new), m_new)  # (..., cq)
            # In place, so one (cq, ck) block is alive at a time.  Autograd allows it: the
            # matrix product that made s does not need s, and exp_ keeps its own result.
            p = s.sub_(shift[..., None]).exp_()  # (..., cq, ck) unnormalised weights
            correction = torch.exp(m - shift)  # (..., cq) rescales what was summed so far (no grad)
            l = l.mul_(correction).add_(p.sum(dim=-1))  # (..., cq)
            acc = acc.mul_(correction[..., None]).add_(p @ v[..., j0:j1, :].to(work))  # (..., cq, Ev)
            m = m_new
        empty = l == 0  # queries that saw no key at all
        outputs.append(acc / torch.where(empty, torch.ones_like(l), l)[..., None])  # (..., cq, Ev)
        if return_lse:
            lses.append(torch.where(empty, torch.full_like(l, float("-inf")), m + torch.log(l)))  # (..., cq)
    out = torch.cat(outputs, dim=-2).to(q.dtype) if outputs else q.new_zeros((*batch, 0, Ev))  # (..., L, Ev)
    if not return_lse:
        return out
    lse = torch.cat(lses, dim=-1) if lses else q.new_zeros((*batch, 0), dtype=work)  # (..., L)
    return out, lse
