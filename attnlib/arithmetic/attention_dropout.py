"""Attention-based dropout (ADL): hide the most attended region so the network looks wider.

Choe & Shim (2019), "Attention-based Dropout Layer for Weakly Supervised Object
Localization", CVPR, arXiv:1908.10028.  A classifier trained with image labels only tends to
look at the single most discriminative part of an object, so its class activation map
covers a small piece of it.  ADL sits between convolutional layers and, in training only,
multiplies the feature map ``F (B, C, H, W)`` by one of two maps computed from
its own self-attention map, the channel mean ``A = mean_c F`` ``(B, 1, H, W)``:

* the **drop mask** ``M_drop = [A < gamma * max A]``: zero where the attention is highest,
  so the layers above must classify from the rest of the object;
* the **importance map** ``M_imp = sigmoid(A)``: a soft emphasis of the attended region.

At every training iteration one draw decides for the whole batch: the drop mask with
probability ``drop_rate``, the importance map otherwise (Sec. 3 of the paper; the authors'
code draws one scalar per forward pass).  ``per_image=True`` is a variant that draws the
choice for each image separately.  The output is ``F * M``.  Attention here is
*arithmetic*: a threshold and a subtraction decide what to hide, not a weighting to keep.
At test time ADL is the identity.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from attnlib._checks import check_feature_map
from attnlib.record import emit

__all__ = ["AttentionDropout", "adl_masks"]


def adl_masks(features: Tensor, gamma: float = 0.9) -> tuple[Tensor, Tensor, Tensor]:
    """``(attention A, drop mask, importance map)``, each ``(B, 1, H, W)``, of ``features (B, C, H, W)``.

    Raises:
        ValueError: ``features`` not a floating-point ``(B, C, H, W)`` map, or ``gamma`` outside ``[0, 1]``.
    """
    check_feature_map(features, "features")
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must lie in [0, 1]; got {gamma}")
    attention = features.mean(dim=1, keepdim=True)  # (B, 1, H, W)
    peak = attention.amax(dim=(2, 3), keepdim=True)  # (B, 1, 1, 1)
    drop = (attention < gamma * peak).to(features.dtype)  # (B, 1, H, W)
    return attention, drop, torch.sigmoid(attention)


class AttentionDropout(nn.Module):
    """ADL (Choe & Shim, 2019): in training, ``F * M`` with ``M`` the drop mask (probability
    ``drop_rate``) or the importance map, one choice per forward pass for the whole batch as in
    the paper; the identity in ``eval()`` mode.

    Args:
        drop_rate: probability that a training iteration uses the drop mask (the paper uses 0.75).
        gamma: drop threshold as a share of the attention's maximum (the paper uses about 0.8-0.9).
        per_image: draw the choice for each image separately (a variant; the paper draws once per batch).

    Emits the self-attention map ``A (B, 1, H, W)`` to :mod:`attnlib.record`.
    """

    def __init__(self, drop_rate: float = 0.75, gamma: float = 0.9, *, per_image: bool = False) -> None:
        super().__init__()
        if not 0.0 <= drop_rate <= 1.0 or not 0.0 <= gamma <= 1.0:
            raise ValueError(f"drop_rate and gamma must lie in [0, 1]; got drop_rate={drop_rate}, gamma={gamma}")
        self.drop_rate, self.gamma, self.per_image = drop_rate, gamma, per_image

    def forward(self, features: Tensor) -> Tensor:
        """``features (B, C, H, W)`` -> same shape."""
        attention, drop, importance = adl_masks(features, self.gamma)
        emit(self, attention)
        if not self.training:
            return features
        draws = features.shape[0] if self.per_image else 1  # one choice per image, or one for the batch
        use_drop = (torch.rand(draws, 1, 1, 1, device=features.device) < self.drop_rate).to(features.dtype)
        mask = use_drop * drop + (1 - use_drop) * importance  # (B, 1, H, W), use_drop broadcast over B
        return features * mask  # (B, C, H, W)
