"""CBAM: a channel gate followed by a spatial gate, each usable alone.

Woo, Park, Lee & Kweon, "CBAM: Convolutional Block Attention Module", ECCV 2018
(arXiv:1807.06521).

For a feature map ``F`` of shape ``(B, C, H, W)``:

* **channel gate** (:class:`ChannelGate`): average- and max-pooling over the positions give
  two descriptors of shape ``(B, C)``; one shared two-layer perceptron (``C -> C/r -> C``,
  ReLU in between, ``r = 16``) scores both, and
  ``M_c = sigmoid(MLP(avg(F)) + MLP(max(F)))``, ``(B, C, 1, 1)``; ``F' = M_c * F``.
  Compared with Squeeze-and-Excitation, the max-pooled descriptor is the addition.
* **spatial gate** (:class:`SpatialGate`): the mean and the max over the channels give two
  maps, stacked into ``(B, 2, H, W)``; one 7x7 convolution turns them into one map and
  ``M_s = sigmoid(conv([mean_c(F'); max_c(F')]))``, ``(B, 1, H, W)``; ``F'' = M_s * F'``.

:class:`CBAM` applies the channel gate, then the spatial gate, the order the paper found
best. We follow the paper's equations; the authors' code adds a batch normalisation after
the 7x7 convolution.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from attnlib._checks import check_feature_map, check_reduction
from attnlib.record import emit

__all__ = ["ChannelGate", "SpatialGate", "CBAM"]


class ChannelGate(nn.Module):
    """CBAM's channel attention: a shared MLP on average- and max-pooled descriptors.

    Shapes:
        ``x`` ``(B, C, H, W)`` -> ``x * M_c`` ``(B, C, H, W)``, with gates ``M_c`` of shape
        ``(B, C, 1, 1)``, values in ``(0, 1)``. Emits ``M_c`` to :mod:`attnlib.record` on every call.

    Args:
        channels: ``C``.
        reduction: ``r``; the hidden layer has ``C / r`` units, and ``C`` must be divisible
            by ``r`` (16 in the paper).

    Raises:
        ValueError: if a size is not positive, or ``channels`` is not divisible by ``reduction``;
            on a call, if ``x`` is not 4-D, does not have ``C`` channels, or is not floating point
            (an integer or uint8 image: convert it with ``.float()``).
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        check_reduction(channels, reduction, "the hidden layer has C / r units")
        self.channels = channels
        self.reduction = reduction
        self.mlp = nn.Sequential(
            nn.Linear(channels, channels // reduction), nn.ReLU(), nn.Linear(channels // reduction, channels)
        )

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, C, H, W): ``x * M_c``, each channel rescaled by its gate."""
        check_feature_map(x, "x", self.channels)
        B, C = x.shape[:2]
        avg = x.mean(dim=(2, 3))  # (B, C)
        mx = x.amax(dim=(2, 3))  # (B, C)
        g = torch.sigmoid(self.mlp(avg) + self.mlp(mx)).view(B, C, 1, 1)  # (B, C, 1, 1)
        emit(self, g)
        return x * g  # (B, C, H, W)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, reduction={self.reduction}"


class SpatialGate(nn.Module):
    """CBAM's spatial attention: a 7x7 convolution over the channel-wise mean and max.

    Shapes:
        ``x`` ``(B, C, H, W)``, any ``C`` -> ``x * M_s`` ``(B, C, H, W)``, with the map ``M_s`` of
        shape ``(B, 1, H, W)``, values in ``(0, 1)``. Emits ``M_s`` to :mod:`attnlib.record` on
        every call.

    Args:
        kernel_size: odd size of the convolution (7 in the paper; padding keeps ``H, W``).

    Raises:
        ValueError: if ``kernel_size`` is not a positive odd integer; on a call, if ``x`` is not
            4-D or is not floating point (an integer or uint8 image: convert it with ``.float()``).
    """

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd integer (to keep H, W); got {kernel_size}")
        self.kernel_size = kernel_size
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, C, H, W): ``x * M_s``, each position rescaled by its gate."""
        check_feature_map(x, "x", None)
        desc = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)  # (B, 2, H, W)
        m = torch.sigmoid(self.conv(desc))  # (B, 1, H, W)
        emit(self, m)
        return x * m  # (B, C, H, W)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}"


class CBAM(nn.Module):
    """Convolutional Block Attention Module: :class:`ChannelGate`, then :class:`SpatialGate`.

    Shapes:
        ``F`` ``(B, C, H, W)`` -> ``M_s(F') * F'`` ``(B, C, H, W)``, with ``F' = M_c(F) * F``.
        Emits nothing itself: its two gates emit under ``"<name>.channel"`` (``(B, C, 1, 1)``)
        and ``"<name>.spatial"`` (``(B, 1, H, W)``).

    Args:
        channels: ``C``.
        reduction: ``r`` of the channel gate (16).
        kernel_size: size of the spatial gate's convolution (7).

    Raises:
        ValueError: as :class:`ChannelGate` and :class:`SpatialGate`.
    """

    def __init__(self, channels: int, reduction: int = 16, kernel_size: int = 7) -> None:
        super().__init__()
        self.channel = ChannelGate(channels, reduction)
        self.spatial = SpatialGate(kernel_size)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, C, H, W): the channel gate, then the spatial gate."""
        return self.spatial(self.channel(x))  # (B, C, H, W)
