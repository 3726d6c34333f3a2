"""Squeeze-and-Excitation: channel attention from a global summary of each channel.

Hu, Shen & Sun, "Squeeze-and-Excitation Networks", CVPR 2018 (arXiv:1709.01507).

For a feature map ``x`` of shape ``(B, C, H, W)`` the block computes one gate per channel:

* **squeeze**: global average pooling gives a descriptor ``s_c = mean_{i,j} x_{c,i,j}``,
  one number per channel, ``(B, C)``;
* **excitation**: a two-layer bottleneck ``g = sigmoid(W2 relu(W1 s + b1) + b2)`` with
  ``W1`` of shape ``(C/r, C)`` and ``W2`` of shape ``(C, C/r)``; ``r`` is the reduction
  ratio (16 in the paper);
* **scale**: every channel is multiplied by its gate, ``y_c = g_c x_c``.

The gates lie in ``(0, 1)``, so the block can only keep or damp channels; it never changes
the shape of the map, which makes it a drop-in after any convolution.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from attnlib._checks import check_feature_map, check_reduction
from attnlib.record import emit

__all__ = ["SqueezeExcite", "SE"]


class SqueezeExcite(nn.Module):
    """Squeeze-and-Excitation block (Hu et al., 2018).

    Shapes:
        ``x`` ``(B, C, H, W)`` -> ``x * g`` ``(B, C, H, W)``, with channel gates ``g`` of shape
        ``(B, C, 1, 1)``, values in ``(0, 1)`` (:meth:`gates` computes them without applying
        them). Emits ``g`` to :mod:`attnlib.record` on every call.

    Args:
        channels: ``C``, the number of channels of the input.
        reduction: ``r``; the bottleneck has ``C / r`` units. ``C`` must be divisible by
            ``r`` (the paper uses 16 throughout).

    Raises:
        ValueError: if ``channels`` or ``reduction`` is not positive, or ``channels`` is
            not divisible by ``reduction``; on a call, if ``x`` is not 4-D, does not have ``C``
            channels, or is not floating point (an integer or uint8 image: convert it with ``.float()``).
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        check_reduction(channels, reduction, "the bottleneck has C / r units")
        self.channels = channels
        self.reduction = reduction
        hidden = channels // reduction
        self.fc1 = nn.Linear(channels, hidden)  # W1: squeeze C -> C/r
        self.fc2 = nn.Linear(hidden, channels)  # W2: excite C/r -> C

    def gates(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, C, 1, 1): the channel gates ``g`` of ``x``, in ``(0, 1)``, not applied."""
        check_feature_map(x, "x", self.channels)
        B, C = x.shape[:2]
        s = x.mean(dim=(2, 3))  # (B, C) squeeze: global average pool
        z = torch.relu(self.fc1(s))  # (B, C/r)
        g = torch.sigmoid(self.fc2(z))  # (B, C)
        return g.view(B, C, 1, 1)  # (B, C, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, C, H, W): ``x * g``, each channel rescaled by its gate."""
        g = self.gates(x)  # (B, C, 1, 1)
        emit(self, g)
        return x * g  # (B, C, H, W)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, reduction={self.reduction}"


SE = SqueezeExcite
"""The paper's short name for :class:`SqueezeExcite` (Hu et al. 2018, SENet)."""
