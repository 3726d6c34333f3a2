"""Recursive convolution: one convolution applied ``T`` times with tied weights (Eigen, Rolfe,
Fergus & LeCun, 2014, "Understanding deep architectures using a recursive convolutional
network", arXiv:1312.1847), as used by the text reader R²AM (Lee & Osindero, 2016,
arXiv:1603.03101, §3.1), and its untied twin.

The block's input ``u`` ``(B, C_in, H, W)`` is first mapped to ``C`` channels, then the same
convolution ``w`` is applied ``T`` times::

    x(0) = f(w_in * u + b_in)
    x(t) = f(w * x(t-1) + b),   t = 1..T                (tied: one w, b for every t)
    x(t) = f(w_t * x(t-1) + b_t)                        (untied: a w_t, b_t per step)

with ``f`` the ReLU.  The tied block is ``T + 1`` convolutions deep for the parameters of
two: depth without parameters.  The untied block has the same depth and ``T + 1`` times the
parameters; it is an ordinary deep CNN written as an unrolled recursion, which is how Eigen
et al. separate the effect of depth from that of the number of parameters: ``tied=False`` is
*their* untied network.

Two senses of "untied".  R²AM's recursive layers keep one kernel across the iterations of a
layer; that sharing is the parameter saving the paper claims for recursive CNNs.  Where Lee &
Osindero speak of untied weights they do not mean a kernel per iteration (that would give the
saving up); the block here unties only what their recursion leaves separate as well, the
feed-forward input convolution ``w_in`` from the recursive ``w``.  The chapter's "untied" encoder
is Eigen et al.'s control, not R²AM's design.

:class:`RecursiveConvEncoder` wraps the block between a convolutional stem and pooling, so
that it maps a strip ``(B, 1, H, W)`` to features ``(B, C, H/4, W/4)``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._checks import check_feature_map

__all__ = ["RecursiveConvBlock", "RecursiveConvEncoder"]


class RecursiveConvBlock(nn.Module):
    """``x(0) = f(w_in * u + b_in)``, then ``T`` applications of one (``tied``) or ``T`` convolutions.

    Args:
        in_channels: ``C_in`` of the input ``u``.
        channels: ``C`` of every ``x(t)``.
        steps: ``T``, the number of recursive applications (0: just the input convolution).
        tied: share ``w`` across the ``T`` steps (recursive) or not (untied).
        kernel_size: odd side of every kernel; padding keeps the spatial size.
    """

    def __init__(
        self, in_channels: int, channels: int, steps: int = 3, tied: bool = True, kernel_size: int = 3
    ) -> None:
        super().__init__()
        if steps < 0 or kernel_size % 2 == 0:
            raise ValueError(f"steps must be >= 0 and kernel_size odd; got steps={steps}, kernel_size={kernel_size}")
        pad = kernel_size // 2
        self.steps = steps
        self.tied = tied
        self.in_channels = in_channels
        self.inp = nn.Conv2d(in_channels, channels, kernel_size, padding=pad)  # w_in, b_in
        count = min(steps, 1) if tied else steps
        self.convs = nn.ModuleList(nn.Conv2d(channels, channels, kernel_size, padding=pad) for _ in range(count))

    def forward(self, u: Tensor) -> Tensor:
        """``u`` ``(B, C_in, H, W)`` -> ``x(T)`` ``(B, C, H, W)``."""
        check_feature_map(u, "u", self.in_channels)
        x = torch.relu(self.inp(u))  # (B, C, H, W)
        for t in range(self.steps):
            x = torch.relu(self.convs[0 if self.tied else t](x))  # (B, C, H, W)
        return x

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


class RecursiveConvEncoder(nn.Module):
    """Stem, a (tied or untied) recursive block, pooling: strips to feature maps.

    ``conv 3x3 (in -> C) + ReLU + max-pool 2``, :class:`RecursiveConvBlock` ``(C -> C, T)``,
    ``max-pool 2``: ``(B, C_in, H, W)`` -> ``(B, C, H/4, W/4)``.

    Args:
        in_channels, channels, steps, tied: as :class:`RecursiveConvBlock`.
    """

    def __init__(self, in_channels: int = 1, channels: int = 32, steps: int = 3, tied: bool = True) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = channels
        self.depth = steps + 2  # convolutions on the path from pixels to features
        self.stem = nn.Sequential(nn.Conv2d(in_channels, channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.block = RecursiveConvBlock(channels, channels, steps, tied)
        self.pool = nn.MaxPool2d(2)

    def forward(self, images: Tensor) -> Tensor:
        """``images`` ``(B, C_in, H, W)`` -> ``(B, C, H/4, W/4)``."""
        check_feature_map(images, "images", self.in_channels)
        return self.pool(self.block(self.stem(images)))  # (B, C, H/4, W/4)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
