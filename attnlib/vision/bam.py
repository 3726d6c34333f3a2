"""BAM: channel and spatial attention in parallel, combined into one 3-D map.

Park, Woo, Lee & Kweon, "BAM: Bottleneck Attention Module", BMVC 2018 (arXiv:1807.06514).

For a feature map ``F`` of shape ``(B, C, H, W)`` two branches run side by side:

* **channel branch**: ``M_c(F) = BN(MLP(avgpool(F)))``, a two-layer perceptron
  ``C -> C/r -> C`` on the globally pooled descriptor, ``(B, C, 1, 1)``;
* **spatial branch**: ``M_s(F) = BN(f_3(f_2(f_1(f_0(F)))))`` where ``f_0`` is a 1x1
  convolution down to ``C/r`` channels, ``f_1`` and ``f_2`` are 3x3 convolutions with
  dilation ``d = 4`` (a large context at little cost), and ``f_3`` is a 1x1 convolution to
  one map, ``(B, 1, H, W)``.

The two are broadcast to ``(B, C, H, W)``, added, and squashed:
``M(F) = sigmoid(M_c(F) + M_s(F))``. The module is residual,

    F' = F + F * M(F),

so a map of zeros leaves ``F`` unchanged and the map can only amplify, by a factor between
1 and 2. The final batch normalisation of each branch follows the paper's equations; the
batch normalisation and ReLU after the hidden layers follow the authors' code.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from attnlib._checks import check_feature_map, check_reduction
from attnlib.record import emit

__all__ = ["BAM"]


class BAM(nn.Module):
    """Bottleneck Attention Module (Park et al., 2018).

    Shapes:
        ``F`` ``(B, C, H, W)`` -> ``F + F * M(F)`` ``(B, C, H, W)``, with the combined map
        ``M = sigmoid(M_c + M_s)`` of shape ``(B, C, H, W)``, values in ``(0, 1)``
        (:meth:`attention` computes it without applying it). Emits ``M`` to
        :mod:`attnlib.record` on every call; its mean over the channels, ``(B, 1, H, W)``, is
        the spatial picture to draw.

    Args:
        channels: ``C``.
        reduction: ``r``; both branches work with ``C / r`` channels (16 in the paper);
            ``C`` must be divisible by it.
        dilation: dilation of the two 3x3 convolutions of the spatial branch (4).

    Raises:
        ValueError: if a size is not positive, or ``channels`` is not divisible by ``reduction``;
            on a call, if ``x`` is not 4-D, does not have ``C`` channels, or is not floating point
            (an integer or uint8 image: convert it with ``.float()``).

    Note:
        The channel branch normalises a ``(B, C)`` vector with batch normalisation, which
        needs more than one example per batch in training.
    """

    def __init__(self, channels: int, reduction: int = 16, dilation: int = 4) -> None:
        super().__init__()
        if dilation < 1:
            raise ValueError(f"dilation must be positive; got dilation={dilation}")
        check_reduction(channels, reduction, "the branches have C / r channels")
        self.channels = channels
        self.reduction = reduction
        self.dilation = dilation
        hidden = channels // reduction
        self.channel_branch = nn.Sequential(
            nn.Linear(channels, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
            nn.Linear(hidden, channels), nn.BatchNorm1d(channels),
        )  # fmt: skip
        self.spatial_branch = nn.Sequential(
            nn.Conv2d(channels, hidden, 1), nn.BatchNorm2d(hidden), nn.ReLU(),
            nn.Conv2d(hidden, hidden, 3, padding=dilation, dilation=dilation), nn.BatchNorm2d(hidden), nn.ReLU(),
            nn.Conv2d(hidden, hidden, 3, padding=dilation, dilation=dilation), nn.BatchNorm2d(hidden), nn.ReLU(),
            nn.Conv2d(hidden, 1, 1), nn.BatchNorm2d(1),
        )  # fmt: skip

    def attention(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, C, H, W): the 3-D attention map ``M(F)``, in ``(0, 1)``, not applied."""
        check_feature_map(x, "x", self.channels)
        B, C = x.shape[:2]
        mc = self.channel_branch(x.mean(dim=(2, 3))).view(B, C, 1, 1)  # (B, C, 1, 1)
        ms = self.spatial_branch(x)  # (B, 1, H, W)
        return torch.sigmoid(mc + ms)  # (B, C, H, W) by broadcasting

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, C, H, W): ``F + F * M(F)``, features amplified where the map is high."""
        m = self.attention(x)  # (B, C, H, W)
        emit(self, m)
        return x + x * m  # (B, C, H, W)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, reduction={self.reduction}, dilation={self.dilation}"
