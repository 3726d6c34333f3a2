"""Linear attention: a kernel feature map instead of the softmax, O(N) time and memory.

Paper
-----
A. Katharopoulos, A. Vyas, N. Pappas and F. Fleuret, "Transformers are RNNs: Fast
Autoregressive Transformers with Linear Attention", ICML 2020, arXiv:2006.16236.

What is computed
----------------
Softmax attention weighs value ``v_j`` for query ``q_i`` by ``sim(q_i, k_j) =
exp(q_i · k_j / sqrt(d))``.  Replace the similarity by a dot product of positive features,
``sim(q, k) = phi(q) · phi(k)`` with ``phi(x) = elu(x) + 1`` (the paper's eq. 7), and the
output of query ``i`` (eq. 2 and 5), written out::

    o_i = sum_j phi(q_i)·phi(k_j) v_j / sum_j phi(q_i)·phi(k_j)
        = phi(q_i)^T (sum_j phi(k_j) v_j^T)  /  phi(q_i)^T (sum_j phi(k_j))

needs the two sums only once for all queries: a ``(d, Ev)`` matrix and a ``(d,)`` vector.
Time and memory are ``O(N d Ev)`` instead of ``O(N^2)``.

Causal (eq. 8-12): query ``i`` uses the sums over ``j <= i`` only, i.e. prefix sums, the
state of an RNN.  A prefix sum of ``(d, Ev)`` outer products at every position would take
``O(N d Ev)`` memory; instead the sequence is cut into chunks: inside a chunk the few
``(c, c)`` pairs are summed directly (the quadratic form with a causal mask) and the chunks
before it contribute through their summed state (the "chunkwise" form later used by
linear-attention kernels).  Both forms give the same numbers as
:func:`linear_attention_weights` followed by a matrix product (tested).

The feature map is not the exponential, so the weights are *not* softmax weights: the
chapter measures how far they are from them.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch.nn.functional as F
from torch import Tensor

from .._checks import check_qkv, shape_str
from ..masks import check_key_mask, work_dtype

__all__ = ["elu_feature_map", "linear_attention", "linear_attention_weights"]

FeatureMap = Callable[[Tensor], Tensor]


def elu_feature_map(x: Tensor) -> Tensor:
    """``phi(x) = elu(x) + 1``: positive, so every similarity ``phi(q)·phi(k)`` is ``> 0``."""
    return F.elu(x) + 1.0


def _features(q: Tensor, k: Tensor, key_mask: Optional[Tensor], feature_map: FeatureMap) -> tuple[Tensor, Tensor]:
    work = work_dtype(q.dtype)
    phi_q = feature_map(q.to(work))  # (..., L, d)
    phi_k = feature_map(k.to(work))  # (..., S, d)
    if key_mask is not None:
        phi_k = phi_k * key_mask[..., None].to(work)  # (..., S, d) a blocked key has zero features
    return phi_q, phi_k


def linear_attention_weights(
    q: Tensor,
    k: Tensor,
    causal: bool = False,
    *,
    key_mask: Optional[Tensor] = None,
    feature_map: FeatureMap = elu_feature_map,
    eps: float = 1e-6,
) -> Tensor:
    """The ``(L, S)`` weights that linear attention uses implicitly (the quadratic form).

    ``w_ij = phi(q_i)·phi(k_j) / (sum_j' phi(q_i)·phi(k_j') + eps)`` over the visible keys.
    Costs ``O(L S)``: for checks and plots, not for long sequences.

    Args:
        q: ``(..., L, d)``.
        k: ``(..., S, d)``.
        causal: query ``i`` sees keys ``0..i``.
        key_mask: optional bool broadcastable to ``(..., S)``, ``True`` = may attend.
        feature_map: ``phi``, applied to the last axis; must give non-negative features.
        eps: added to the normaliser (a query with no visible key gets zero weights).

    Returns:
        ``(..., L, S)`` weights in float32 for float16/bfloat16 input, else ``q``'s dtype.
    """
    check_qkv(q, k, k)
    check_key_mask(key_mask, tuple(q.shape[:-2]), k.shape[-2])
    phi_q, phi_k = _features(q, k, key_mask, feature_map)
    sim = phi_q @ phi_k.transpose(-2, -1)  # (..., L, S)
    if causal:
        sim = sim.tril()  # (..., L, S) top-left aligned, like attnlib.masks.causal_mask
    return sim / (sim.sum(dim=-1, keepdim=True) + eps)  # (..., L, S)


def linear_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    causal: bool = False,
    *,
    key_mask: Optional[Tensor] = None,
    feature_map: FeatureMap = elu_feature_map,
    eps: float = 1e-6,
    chunk_size: int = 64,
) -> Tensor:
    """Linear attention of Katharopoulos et al. (2020), non-causal or causal, in ``O(N)``.

    Equivalent to ``linear_attention_weights(q, k, causal) @ v`` (tested) without forming
    the ``(L, S)`` matrix.

    Args:
        q: ``(..., L, d)`` queries, e.g. ``(B, H, L, d)``.
        k: ``(..., S, d)`` keys, same batch dimensions and dtype.
        v: ``(..., S, Ev)`` values.
        causal: query ``i`` sees keys ``0..i`` (prefix sums, computed chunk by chunk).
        key_mask: optional bool broadcastable to ``(..., S)``, ``True`` = may attend.
        feature_map: ``phi`` (default ``elu(x) + 1``, the paper's choice).
        eps: added to the normaliser, as in the paper's code; a query that sees no key
            gets a zero output.
        chunk_size: positions per chunk of the causal form (work ``O(N c d)``, memory
            ``O(N d Ev / c + N c)``).

    Returns:
        ``(..., L, Ev)`` in ``q``'s dtype (float16/bfloat16 are computed in float32).

    Raises:
        ValueError: shapes or dtypes that do not fit, ``causal`` with ``L != S``, a bad
            ``key_mask`` or a chunk size below 1.
    """
    check_qkv(q, k, v)
    L, S = q.shape[-2], k.shape[-2]
    check_key_mask(key_mask, tuple(q.shape[:-2]), S)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1; got {chunk_size}")
    phi_q, phi_k = _features(q, k, key_mask, feature_map)
    v = v.to(phi_q.dtype)
    if not causal:
        kv = phi_k.transpose(-2, -1) @ v  # (..., d, Ev) sum_j phi(k_j) v_j^T
        z = phi_k.sum(dim=-2)  # (..., d) sum_j phi(k_j)
        num = phi_q @ kv  # (..., L, Ev)
        den = phi_q @ z[..., None]  # (..., L, 1)
        return (num / (den + eps)).to(q.dtype)
    if L != S:
        raise ValueError(
            f"causal linear attention needs as many queries as keys; got q {shape_str(q.shape)}, k {shape_str(k.shape)}"
        )
    c = chunk_size
    n = -(-L // c)
    pad = n * c - L  # padded keys have zero features, so they add nothing
    phi_q = F.pad(phi_q, (0, 0, 0, pad)).unflatten(-2, (n, c))  # (..., n, c, d)
    phi_k = F.pad(phi_k, (0, 0, 0, pad)).unflatten(-2, (n, c))  # (..., n, c, d)
    v = F.pad(v, (0, 0, 0, pad)).unflatten(-2, (n, c))  # (..., n, c, Ev)

    chunk_kv = phi_k.transpose(-2, -1) @ v  # (..., n, d, Ev) each chunk's sum of phi(k) v^T
    chunk_z = phi_k.sum(dim=-2)  # (..., n, d)
    # Exclusive prefix sums: the state before chunk t sums chunks 0..t-1 (shift by one chunk).
    state_kv = F.pad(chunk_kv.cumsum(dim=-3), (0, 0, 0, 0, 1, 0))[..., :-1, :, :]  # (..., n, d, Ev)
    state_z = F.pad(chunk_z.cumsum(dim=-2), (0, 0, 1, 0))[..., :-1, :]  # (..., n, d)
    inside = (phi_q @ phi_k.transpose(-2, -1)).tril()  # (..., n, c, c) pairs within a chunk, j <= i
    num = phi_q @ state_kv + inside @ v  # (..., n, c, Ev)
    den = phi_q @ state_z[..., None] + inside.sum(dim=-1, keepdim=True)  # (..., n, c, 1)
    out = (num / (den + eps)).flatten(-3, -2)[..., :L, :]  # (..., L, Ev)
    return out.to(q.dtype)
