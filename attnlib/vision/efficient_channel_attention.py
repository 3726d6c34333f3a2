"""Efficient Channel Attention: SE's gates from a 1-D convolution, without a bottleneck.

Wang, Wu, Zhu, Li, Zuo & Hu, "ECA-Net: Efficient Channel Attention for Deep Convolutional
Neural Networks", CVPR 2020 (arXiv:1910.03151).

Like Squeeze-and-Excitation, ECA squeezes each channel of ``x`` (``(B, C, H, W)``) to its
mean ``s`` (``(B, C)``). Instead of SE's two fully connected layers through ``C / r``
units, it slides one small 1-D convolution (``k`` weights, no bias, zero padding) along
the channel axis, so each gate sees only its ``k`` neighbouring channels::

    g = sigmoid(conv1d_k(s)),        y_c = g_c x_c.

There is no reduction, so no information is squeezed through a bottleneck, and the block
has only ``k`` parameters. The kernel size grows with the number of channels::

    k = psi(C) = | log2(C) / gamma + b / gamma |_odd,      gamma = 2, b = 1,

where ``|t|_odd`` is the odd integer nearest to ``t``. Written as ``2 floor(t / 2) + 1`` it
gives 1 for C < 8, 3 for C = 8..127, 5 for C = 128..2047 and 7 from C = 2048 (the
authors' code computes the same numbers as ``int(t)``, plus one when that is even).
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor, nn

from attnlib._checks import check_feature_map
from attnlib.record import emit

__all__ = ["EfficientChannelAttention", "ECA", "eca_kernel_size"]


def eca_kernel_size(channels: int, gamma: float = 2.0, b: float = 1.0) -> int:
    """The adaptive kernel size ``k = |log2(C) / gamma + b / gamma|_odd`` of ECA.

    Args:
        channels: ``C`` (positive).
        gamma, b: the constants of the mapping (2 and 1 in the paper).

    Returns:
        An odd integer ``k >= 1``.

    Raises:
        ValueError: if ``channels`` or ``gamma`` is not positive.
    """
    if channels < 1 or gamma <= 0:
        raise ValueError(f"channels and gamma must be positive; got channels={channels}, gamma={gamma}")
    t = abs(math.log2(channels) / gamma + b / gamma)
    return 2 * math.floor(t / 2) + 1  # the odd integer nearest to t


class EfficientChannelAttention(nn.Module):
    """ECA block (Wang et al., 2020).

    Shapes:
        ``x`` ``(B, C, H, W)`` -> ``x * g`` ``(B, C, H, W)``, with channel gates ``g`` of shape
        ``(B, C, 1, 1)``, values in ``(0, 1)`` (:meth:`gates` computes them without applying
        them). Emits ``g`` to :mod:`attnlib.record` on every call.

    Args:
        channels: ``C``, the number of channels of the input.
        kernel_size: ``k``, odd; ``None`` (default) chooses :func:`eca_kernel_size`.
        gamma, b: constants of the adaptive kernel size (used when ``kernel_size`` is None).

    Raises:
        ValueError: if ``channels`` is not positive or ``kernel_size`` is not a positive
            odd integer; on a call, if ``x`` is not 4-D, does not have ``C`` channels, or is not
            floating point (an integer or uint8 image: convert it with ``.float()``).
    """

    def __init__(self, channels: int, kernel_size: Optional[int] = None, gamma: float = 2.0, b: float = 1.0) -> None:
        super().__init__()
        if channels < 1:
            raise ValueError(f"channels must be positive; got {channels}")
        k = eca_kernel_size(channels, gamma, b) if kernel_size is None else kernel_size
        if k < 1 or k % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd integer (so the gates stay aligned); got {k}")
        self.channels = channels
        self.kernel_size = k
        self.conv = nn.Conv1d(1, 1, kernel_size=k, padding=k // 2, bias=False)

    def gates(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, C, 1, 1): the channel gates ``g`` of ``x``, in ``(0, 1)``, not applied."""
        check_feature_map(x, "x", self.channels)
        B, C = x.shape[:2]
        s = x.mean(dim=(2, 3)).view(B, 1, C)  # (B, 1, C): channels become the "time" axis
        g = torch.sigmoid(self.conv(s))  # (B, 1, C)
        return g.view(B, C, 1, 1)  # (B, C, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, C, H, W): ``x * g``, each channel rescaled by its gate."""
        g = self.gates(x)  # (B, C, 1, 1)
        emit(self, g)
        return x * g  # (B, C, H, W)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, kernel_size={self.kernel_size}"


ECA = EfficientChannelAttention
"""The paper's short name for :class:`EfficientChannelAttention` (Wang et al. 2020, ECA-Net)."""
