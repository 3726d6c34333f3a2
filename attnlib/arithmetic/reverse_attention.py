"""Reverse attention: weight features by what the current prediction has *not* found.

Chen, Tan, Wang & Hu (2018), "Reverse Attention for Salient Object Detection", ECCV,
arXiv:1807.09940.  A coarse prediction map ``S (B, 1, h, w)`` (logits) is upsampled to the
side features ``F (B, C, H, W)`` and turned around::

    R = 1 - sigmoid(up(S))                  # (B, 1, H, W): high where S saw nothing
    F_R = F * R                             # (B, C, H, W): the features of what was missed
    S' = up(S) + conv(F_R)                  # (B, 1, H, W): the residual refines the prediction

so the side branch learns only the residual, the parts and edges the coarse map missed.
The attention is arithmetic, ``1 - sigma``, rather than a softmax.
:func:`reverse_attention_weights` computes ``R``; :class:`ReverseAttention` is the whole block.
Chen et al.'s block is trained with saliency masks (supervised refinement).  The chapter's weakly
supervised localisation toy uses only the weighting ``R`` inside a second classifier head
that must find the class in what the first head's map left out; that erase-and-find design is
ACoL's (Zhang et al., 2018, arXiv:1804.06962), see :mod:`attnlib.category.localisation`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnlib._checks import check_feature_map, check_floating, check_rank, shape_str
from attnlib.record import emit

__all__ = ["reverse_attention_weights", "ReverseAttention"]


def reverse_attention_weights(prediction: Tensor, size: tuple[int, int]) -> Tensor:
    """``1 - sigmoid(up(prediction))``: ``prediction (B, 1, h, w)`` logits -> ``(B, 1, *size)``.

    Raises:
        ValueError: ``prediction`` not a floating-point ``(B, 1, h, w)`` map.
    """
    check_rank(prediction, "prediction", 4, "(B, 1, h, w)")
    check_floating(prediction, "prediction")
    if prediction.shape[1] != 1:
        raise ValueError(f"prediction must have one channel, shape (B, 1, h, w); got {shape_str(prediction.shape)}")
    up = F.interpolate(prediction, size=size, mode="bilinear", align_corners=False)  # (B, 1, H, W)
    return 1 - torch.sigmoid(up)


class ReverseAttention(nn.Module):
    """One reverse-attention block (Chen et al., 2018): ``up(S) + conv(F * (1 - sigmoid(up(S))))``.

    Args:
        channels: ``C`` of the side features.
        hidden: channels of the residual branch's hidden layers.

    Emits the reverse weights ``R (B, 1, H, W)`` to :mod:`attnlib.record`.
    """

    def __init__(self, channels: int, hidden: int = 32) -> None:
        super().__init__()
        if channels < 1 or hidden < 1:
            raise ValueError(f"channels and hidden must be positive; got channels={channels}, hidden={hidden}")
        self.channels = channels
        self.residual = nn.Sequential(
            nn.Conv2d(channels, hidden, 3, padding=1), nn.ReLU(), nn.Conv2d(hidden, 1, 3, padding=1)
        )

    def forward(self, features: Tensor, prediction: Tensor) -> Tensor:
        """``features (B, C, H, W)``, ``prediction (B, 1, h, w)`` logits -> refined logits ``(B, 1, H, W)``."""
        check_feature_map(features, "features", channels=self.channels)
        size = (features.shape[2], features.shape[3])
        weights = reverse_attention_weights(prediction, size)  # (B, 1, H, W)
        if weights.shape[0] != features.shape[0]:
            raise ValueError(
                f"features and prediction must have the same batch size; got {shape_str(features.shape)} "
                f"and {shape_str(prediction.shape)}"
            )
        emit(self, weights)
        up = F.interpolate(prediction, size=size, mode="bilinear", align_corners=False)  # (B, 1, H, W)
        return up + self.residual(features * weights)
