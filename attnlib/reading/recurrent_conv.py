"""The recurrent convolutional layer (RCL) of Liang & Hu (2015), "Recurrent convolutional
neural network for object recognition", CVPR (§3.1).

Unlike the recursive block (:mod:`~attnlib.reading.recursive_conv`), the layer's input ``u``
``(B, C, H, W)`` is fed again at every step, through its own feed-forward kernel ``w_f``,
while a recurrent kernel ``w_r`` carries the state::

    x(0) = f(w_f * u + b)
    x(t) = f(w_f * u + w_r * x(t-1) + b),   t = 1..T

with ``f`` the ReLU (Liang & Hu add local response normalisation, left out here).  Each
step sees the input again, so ``x(t)`` cannot drift away from it however large ``T``; the
parameters (``w_f``, ``w_r``, ``b``) do not depend on ``T``.

:class:`RecurrentConvEncoder` wraps the layer between a convolutional stem and pooling,
exactly as :class:`~attnlib.reading.recursive_conv.RecursiveConvEncoder` wraps its block.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._checks import check_feature_map

__all__ = ["RecurrentConvLayer", "RecurrentConvEncoder"]


class RecurrentConvLayer(nn.Module):
    """``x(t) = f(w_f * u + w_r * x(t-1) + b)`` for ``t = 0..T`` (``x(-1) = 0``).

    Args:
        channels: ``C`` of the input and of every ``x(t)``.
        steps: ``T``, the number of recurrent steps after ``x(0)``.
        kernel_size: odd side of both kernels.
    """

    def __init__(self, channels: int, steps: int = 3, kernel_size: int = 3) -> None:
        super().__init__()
        if steps < 0 or kernel_size % 2 == 0:
            raise ValueError(f"steps must be >= 0 and kernel_size odd; got steps={steps}, kernel_size={kernel_size}")
        pad = kernel_size // 2
        self.channels = channels
        self.steps = steps
        self.feedforward = nn.Conv2d(channels, channels, kernel_size, padding=pad)  # w_f, b
        self.recurrent = nn.Conv2d(channels, channels, kernel_size, padding=pad, bias=False)  # w_r

    def forward(self, u: Tensor) -> Tensor:
        """``u`` ``(B, C, H, W)`` -> ``x(T)`` ``(B, C, H, W)``."""
        check_feature_map(u, "u", self.channels)
        drive = self.feedforward(u)  # (B, C, H, W): w_f * u + b, the same at every step
        x = torch.relu(drive)
        for _ in range(self.steps):
            x = torch.relu(drive + self.recurrent(x))  # (B, C, H, W)
        return x

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


class RecurrentConvEncoder(nn.Module):
    """``conv 3x3 + ReLU + max-pool 2``, :class:`RecurrentConvLayer`, ``max-pool 2``:
    ``(B, C_in, H, W)`` -> ``(B, C, H/4, W/4)``."""

    def __init__(self, in_channels: int = 1, channels: int = 32, steps: int = 3) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = channels
        self.depth = steps + 2  # convolutions on the longest path from pixels to features
        self.stem = nn.Sequential(nn.Conv2d(in_channels, channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.layer = RecurrentConvLayer(channels, steps)
        self.pool = nn.MaxPool2d(2)

    def forward(self, images: Tensor) -> Tensor:
        """``images`` ``(B, C_in, H, W)`` -> ``(B, C, H/4, W/4)``."""
        check_feature_map(images, "images", self.in_channels)
        return self.pool(self.layer(self.stem(images)))  # (B, C, H/4, W/4)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
