"""Doubly stochastic attention: the soft model's objective and its regulariser.

Xu et al., *Show, Attend and Tell*, ICML 2015 (arXiv:1502.03044), section 4.2.1.  The
softmax makes ``sum_i alpha_ti = 1`` at every step ``t``; the regulariser also asks every
location to receive about as much attention, summed over the caption,

    penalty = lambda * sum_i (1 - sum_t alpha_ti)^2,

and the soft model minimises (eq. 14)

    L_d = -log p(y | a) + lambda * sum_i (1 - sum_t alpha_ti)^2 .

The paper does not give ``lambda``; the authors' code calls it ``alpha_c`` (default 0 in
``capgen.train``, 1.0 in their COCO script ``evaluate_coco.py``) and averages the penalty over
the minibatch, as we do.  Only the caption's real steps (up to and including ``<eos>``)
count in ``sum_t``.  With ``T`` steps and ``L`` cells the penalty is smallest when every cell
receives ``T / L``: for a short caption over many cells it pulls the maps towards uniform.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

from torch import Tensor

from attnlib._checks import check_rank, shape_str

from .show_attend_tell import CaptionOutput, caption_nll

__all__ = ["doubly_stochastic_penalty", "SoftAttentionLoss", "soft_attention_loss"]


def doubly_stochastic_penalty(alphas: Tensor, mask: Optional[Tensor] = None) -> Tensor:
    """``mean_b sum_i (1 - sum_t alpha_bti)^2`` (without ``lambda``).

    Args:
        alphas: ``(B, T, L)`` attention weights.
        mask: ``(B, T)`` bool, True on the steps that count (default: all).

    Returns:
        A scalar.
    """
    check_rank(alphas, "alphas", 3, "(B, T, L)")
    if mask is not None:
        if tuple(mask.shape) != tuple(alphas.shape[:2]):
            raise ValueError(
                f"mask must have shape (B, T) = {shape_str(alphas.shape[:2])}; got {shape_str(mask.shape)}"
            )
        alphas = alphas * mask[:, :, None]  # (B, T, L)
    coverage = alphas.sum(dim=1)  # (B, L): attention each cell received over the caption
    return ((1 - coverage) ** 2).sum(dim=1).mean()  # (B, L) -> (B,) -> scalar


class SoftAttentionLoss(NamedTuple):
    """Terms of the soft model's objective (scalars, means over the batch)."""

    total: Tensor  #: likelihood + weight * penalty
    likelihood: Tensor  #: ``-log p(y | a)`` per caption
    penalty: Tensor  #: :func:`doubly_stochastic_penalty` (unweighted)


def soft_attention_loss(
    output: CaptionOutput, captions: Tensor, *, doubly_stochastic_weight: float = 1.0, pad_id: int = 0
) -> SoftAttentionLoss:
    """Eq. 14: ``-log p(y | a) + lambda sum_i (1 - sum_t alpha_ti)^2``, averaged over the batch.

    Args:
        output: the teacher-forced :class:`~attnlib.captioning.show_attend_tell.CaptionOutput`.
        captions: ``(B, T)`` the targets it was computed for.
        doubly_stochastic_weight: ``lambda`` (0 switches the regulariser off).
        pad_id: padding token.
    """
    if tuple(captions.shape) != tuple(output.logits.shape[:2]):
        raise ValueError(
            f"captions must have shape (B, T) = {shape_str(output.logits.shape[:2])}; got {shape_str(captions.shape)}"
        )
    likelihood = caption_nll(output.logits, captions, pad_id).mean()
    penalty = doubly_stochastic_penalty(output.alphas, captions != pad_id)
    return SoftAttentionLoss(likelihood + doubly_stochastic_weight * penalty, likelihood, penalty)
