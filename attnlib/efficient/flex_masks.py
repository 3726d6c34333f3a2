"""The course's masks and biases as FlexAttention ``mask_mod`` and ``score_mod`` functions.

Reference
---------
J. Dong, B. Feng, D. Guessous, Y. Liang and H. He, "Flex Attention: a programming model for
generating optimized attention kernels", 2024, arXiv:2412.05496; the API is
:func:`torch.nn.attention.flex_attention.flex_attention`.

FlexAttention describes a variant of attention by two small functions of the indices
``b`` (batch), ``h`` (head), ``q_idx`` (query) and ``kv_idx`` (key), each a scalar tensor:

* a ``mask_mod(b, h, q_idx, kv_idx) -> bool``: ``True`` = this query may attend to this key,
  the same convention as attnlib's boolean masks (:mod:`attnlib.masks`);
* a ``score_mod(score, b, h, q_idx, kv_idx) -> score``: rewrites one scaled score
  ``q . k / sqrt(d)`` before the softmax; adding a bias is an additive mask in attnlib's terms.

Here are the masks and biases of the course in that form, each tested equal (float64, CPU,
eager) to attnlib's reference path, the dense mask or bias through
:func:`attnlib.functional.scaled_dot_product_attention`:

===============================  ===============================================================
FlexAttention function           attnlib reference
===============================  ===============================================================
:func:`causal_mask_mod`          :func:`attnlib.masks.causal_mask`
:func:`padding_mask_mod`         :func:`attnlib.masks.lengths_to_mask` on the keys
:func:`sliding_window_mask_mod`  :func:`attnlib.efficient.local.sliding_window_mask`
:func:`sink_window_mask_mod`     :func:`attnlib.transformer.sink_cache.sink_window_mask`
:func:`alibi_score_mod`          :func:`attnlib.transformer.alibi.alibi_bias`
:func:`local_p_mask_mod`         Luong's window, :func:`attnlib.seq2seq.luong.local_window_mask`
:func:`local_p_score_mod`        log of Luong's :func:`attnlib.seq2seq.luong.gaussian_window`
===============================  ===============================================================

Masks combine with :func:`torch.nn.attention.flex_attention.and_masks` (and ``or_masks``);
:func:`torch.nn.attention.flex_attention.create_mask` turns a ``mask_mod`` into the dense
``(B, H, L, S)`` boolean mask, and :func:`score_mod_bias` does the same for a ``score_mod``.

Luong's local-p as a score bias
-------------------------------
Luong et al. (2015, eq. 10) multiply the softmax over the window by a Gaussian
``exp(-(s - p_t)^2 / (2 sigma^2))``, ``sigma = D / 2``, and the weights then sum to less than
one.  Written as a ``score_mod``, the logarithm of the Gaussian, ``-(s - p_t)^2 / (2 sigma^2)``,
is added to the scores *inside* the softmax, so the weights are renormalised: they are
Luong's weights divided by their sum, and the output is Luong's context vector divided by
that same sum (tested).

Eager and compiled
------------------
Called directly, as in the tests and on a CPU, ``flex_attention`` runs eagerly: it builds the
full ``(B, H, L, S)`` score matrix, applies the functions to every entry, and is no faster
than the dense reference (PyTorch warns once that it is not compiled).  Under
``torch.compile`` on a GPU, the functions are compiled into one fused kernel in the style of
FlashAttention, which never stores the score matrix, and the
:class:`~torch.nn.attention.flex_attention.BlockMask` made by
:func:`~torch.nn.attention.flex_attention.create_block_mask` lets it skip whole blocks of
keys that the ``mask_mod`` blocks (a causal or sliding-window mask skips most of them).
Either way FlexAttention returns the output only, never the attention weights (at most the
log-sum-exp of each row, ``return_lse=True``): to look at the weights, use attnlib's
reference path with the dense mask.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Optional

import torch
from torch import Tensor
from torch.nn.attention.flex_attention import create_block_mask, flex_attention

from .._checks import check_qkv, check_rank, shape_str
from ..transformer.alibi import alibi_slopes

__all__ = [
    "causal_mask_mod",
    "padding_mask_mod",
    "sliding_window_mask_mod",
    "sink_window_mask_mod",
    "alibi_score_mod",
    "local_p_mask_mod",
    "local_p_score_mod",
    "score_mod_bias",
    "flex_attend",
]

MaskMod = Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]
"""``mask_mod(b, h, q_idx, kv_idx) -> bool tensor``: True = may attend."""
ScoreMod = Callable[[Tensor, Tensor, Tensor, Tensor, Tensor], Tensor]
"""``score_mod(score, b, h, q_idx, kv_idx) -> score``."""


def causal_mask_mod(b: Tensor, h: Tensor, q_idx: Tensor, kv_idx: Tensor) -> Tensor:
    """Query ``i`` sees keys ``0 .. i`` (top-left aligned, as :func:`attnlib.masks.causal_mask`)."""
    return q_idx >= kv_idx


def padding_mask_mod(lengths: Tensor) -> MaskMod:
    """Key padding: in batch element ``b`` only keys ``0 .. lengths[b] - 1`` are real.

    Args:
        lengths: ``(B,)`` integer, on the device of the attention inputs.

    Returns:
        A ``mask_mod``; a query of a sequence of length 0 sees no key and gets a zero output.
    """
    check_rank(lengths, "lengths", 1, "(B,)")
    if torch.is_floating_point(lengths) or lengths.dtype == torch.bool:
        raise ValueError(f"lengths must be an integer tensor; got dtype {lengths.dtype}")

    def padding(b: Tensor, h: Tensor, q_idx: Tensor, kv_idx: Tensor) -> Tensor:
        return kv_idx < lengths[b]

    return padding


def sliding_window_mask_mod(window: int, causal: bool = True) -> MaskMod:
    """The band ``|i - j| <= window`` (``0 <= i - j <= window`` when causal) of
    :func:`attnlib.efficient.local.sliding_window_mask`."""
    if window < 0:
        raise ValueError(f"window must be >= 0; got {window}")

    def sliding_window(b: Tensor, h: Tensor, q_idx: Tensor, kv_idx: Tensor) -> Tensor:
        near = (q_idx - kv_idx).abs() <= window
        return near & (q_idx >= kv_idx) if causal else near

    return sliding_window


def sink_window_mask_mod(num_sinks: int, window: int) -> MaskMod:
    """Causal, and the key is one of the first ``num_sinks`` or at most ``window`` back: the
    pattern of a :class:`~attnlib.transformer.sink_cache.SinkKVCache` (StreamingLLM)."""
    if num_sinks < 0 or window < 0:
        raise ValueError(f"num_sinks and window must be >= 0; got num_sinks={num_sinks}, window={window}")

    def sink_window(b: Tensor, h: Tensor, q_idx: Tensor, kv_idx: Tensor) -> Tensor:
        return (q_idx >= kv_idx) & ((kv_idx < num_sinks) | (q_idx - kv_idx <= window))

    return sink_window


def alibi_score_mod(num_heads: int, offset: int = 0) -> ScoreMod:
    """ALiBi: subtract ``m_h * |offset + i - j|`` from the score of head ``h`` (slopes of
    :func:`attnlib.transformer.alibi.alibi_slopes`); combine with :func:`causal_mask_mod`."""
    slopes = alibi_slopes(num_heads).double()  # (H,)

    def alibi(score: Tensor, b: Tensor, h: Tensor, q_idx: Tensor, kv_idx: Tensor) -> Tensor:
        m = slopes.to(device=score.device, dtype=score.dtype)[h]
        return score - m * (q_idx + offset - kv_idx).abs().to(score.dtype)

    return alibi


def _check_centers(centers: Tensor) -> None:
    check_rank(centers, "centers", 2, "(B, L)")
    if not torch.is_floating_point(centers):
        raise ValueError(f"centers must be a floating-point tensor (B, L); got dtype {centers.dtype}")


def local_p_mask_mod(centers: Tensor, half_width: int, lengths: Optional[Tensor] = None) -> MaskMod:
    """Luong's local window: query ``i`` of batch element ``b`` sees keys with
    ``|j - p| <= half_width``, ``p = centers[b, i]``.

    With ``lengths`` ``(B,)``, only real keys ``j < lengths[b]``, and a centre beyond the end is
    moved to the last real key first (as :func:`attnlib.seq2seq.luong.local_window_mask`), so
    no row is empty.

    Args:
        centers: ``(B, L)`` window centres ``p_t`` (real numbers for local-p).
        half_width: ``D`` (the paper: 10).
        lengths: optional ``(B,)`` source lengths.
    """
    _check_centers(centers)
    if half_width < 0:
        raise ValueError(f"half_width must be >= 0; got {half_width}")
    if lengths is not None:
        check_rank(lengths, "lengths", 1, "(B,)")
        if lengths.shape[0] != centers.shape[0]:
            raise ValueError(
                f"lengths must have shape (B,) = ({centers.shape[0]},) like centers' batch; "
                f"got {shape_str(lengths.shape)}"
            )

    def local_p(b: Tensor, h: Tensor, q_idx: Tensor, kv_idx: Tensor) -> Tensor:
        p = centers[b, q_idx]
        if lengths is None:
            return (kv_idx.to(p.dtype) - p).abs() <= half_width
        p = torch.minimum(p, (lengths[b] - 1).to(p.dtype))
        return ((kv_idx.to(p.dtype) - p).abs() <= half_width) & (kv_idx < lengths[b])

    return local_p


def local_p_score_mod(centers: Tensor, half_width: int) -> ScoreMod:
    """Luong's Gaussian ``exp(-(j - p)^2 / (2 sigma^2))``, ``sigma = half_width / 2``, as the bias
    ``-(j - p)^2 / (2 sigma^2)`` on the scores (see the module docstring for how this differs
    from multiplying the weights).

    Args:
        centers: ``(B, L)`` window centres ``p_t`` (not clamped, as in Luong et al.).
        half_width: ``D``; ``sigma = D / 2`` (eq. 10).
    """
    _check_centers(centers)
    if half_width <= 0:
        raise ValueError(f"half_width must be > 0 (sigma = half_width / 2); got {half_width}")
    sigma = half_width / 2

    def local_p_gaussian(score: Tensor, b: Tensor, h: Tensor, q_idx: Tensor, kv_idx: Tensor) -> Tensor:
        distance = kv_idx.to(score.dtype) - centers[b, q_idx].to(score.dtype)
        return score - distance**2 / (2 * sigma**2)

    return local_p_gaussian


def _indices(B: int, H: int, L: int, S: int, device: Optional[torch.device]) -> tuple[Tensor, ...]:
    """``b (B,1,1,1)``, ``h (1,H,1,1)``, ``q_idx (1,1,L,1)``, ``kv_idx (1,1,1,S)``, broadcasting to ``(B, H, L, S)``."""
    return (
        torch.arange(B, device=device)[:, None, None, None],
        torch.arange(H, device=device)[None, :, None, None],
        torch.arange(L, device=device)[None, None, :, None],
        torch.arange(S, device=device)[None, None, None, :],
    )


def score_mod_bias(
    score_mod: ScoreMod,
    B: int,
    H: int,
    L: int,
    S: int,
    *,
    device: Optional[torch.device] = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """The dense additive mask ``(B, H, L, S)`` a ``score_mod`` stands for: ``score_mod(0, b, h, i, j)``.

    The function is called once on broadcast index tensors (not per entry), which is right for
    functions made of element-wise tensor operations, as all of this module's are.
    """
    b, h, q_idx, kv_idx = _indices(B, H, L, S, device)
    zero = torch.zeros(B, H, L, S, device=device, dtype=dtype)
    return score_mod(zero, b, h, q_idx, kv_idx).expand(B, H, L, S).to(dtype)  # (B, H, L, S)


def flex_attend(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask_mod: Optional[MaskMod] = None,
    score_mod: Optional[ScoreMod] = None,
    scale: Optional[float] = None,
) -> Tensor:
    """:func:`~torch.nn.attention.flex_attention.flex_attention` with a block mask built from
    ``mask_mod`` for these shapes, without the warning an eager call prints.

    Args:
        q: ``(B, H, L, E)``; k: ``(B, G, S, E)``; v: ``(B, G, S, Ev)``, ``G`` dividing ``H``
            (grouped-query attention when ``G < H``).
        mask_mod, score_mod: see the module docstring; ``None``: no mask, no bias.
        scale: defaults to ``1 / sqrt(E)``.

    Returns:
        ``(B, H, L, Ev)``; a query whose keys are all masked gets zeros.  No weights.
    """
    for name, x, layout in (("q", q, "(B, H, L, E)"), ("k", k, "(B, G, S, E)"), ("v", v, "(B, G, S, Ev)")):
        check_rank(x, name, 4, layout)
    if k.shape[1] == 0 or q.shape[1] % k.shape[1] or k.shape[1] != v.shape[1]:
        raise ValueError(
            f"k and v need G heads with G dividing q's H; got q {shape_str(q.shape)}, "
            f"k {shape_str(k.shape)}, v {shape_str(v.shape)}"
        )
    G = k.shape[1]
    r = q.shape[1] // G
    check_qkv(q[:, ::r], k, v)  # same batch, dtype and feature sizes (one query head per group)
    B, H, L, _ = q.shape
    S = k.shape[2]
    block_mask = None if mask_mod is None else create_block_mask(mask_mod, B, H, L, S, device=q.device)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="flex_attention called without torch.compile")
        out = flex_attention(q, k, v, score_mod=score_mod, block_mask=block_mask, scale=scale, enable_gqa=G != H)
    assert isinstance(out, Tensor)  # no lse or aux requested
    return out  # (B, H, L, Ev)
