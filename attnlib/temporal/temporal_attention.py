"""Attention over time: which frames of a video decide its label, and where in them.

Sharma, Kiros & Salakhutdinov (2015), "Action Recognition using Visual Attention",
arXiv:1511.04119, attend over the ``K x K`` locations of each frame's convolutional feature
map with a softmax (their Eq. 4) and feed the weighted feature to an LSTM.  Here the same
soft attention is applied at two levels, scored from the features themselves rather than
from an LSTM state:

* **temporal attention** over the frames' vectors ``x_t`` (``(B, T, D)``)::

      e_t = w^T tanh(W x_t + b),   a = softmax_t(e),   c = sum_t a_t x_t      # c (B, D)

* **spatial-temporal attention**: inside each frame, a softmax over its ``H W`` locations
  (Sharma et al.'s location softmax) pools the feature map ``(B, T, C, H, W)`` into one
  vector per frame, then temporal attention pools the frames.

With ``a`` uniform, temporal attention is average pooling over time, the baseline that
dilutes the one frame that matters.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from attnlib._checks import check_floating, check_rank, shape_str
from attnlib.record import emit

__all__ = ["TemporalAttention", "SpatialTemporalAttention"]


class TemporalAttention(nn.Module):
    """Soft attention pooling over frames: ``(B, T, D) -> (c (B, D), a (B, T))``.

    Args:
        dim: ``D``.
        hidden: size of ``W``'s output.

    Emits ``a (B, T)`` to :mod:`attnlib.record`.
    """

    def __init__(self, dim: int, hidden: int = 32) -> None:
        super().__init__()
        if dim < 1 or hidden < 1:
            raise ValueError(f"dim and hidden must be positive; got dim={dim}, hidden={hidden}")
        self.dim = dim
        self.proj = nn.Linear(dim, hidden)  # W, b
        self.score = nn.Linear(hidden, 1, bias=False)  # w

    def forward(self, frames: Tensor) -> tuple[Tensor, Tensor]:
        check_rank(frames, "frames", 3, "(B, T, D)")
        check_floating(frames, "frames")
        if frames.shape[2] != self.dim:
            raise ValueError(f"frames must be (B, T, {self.dim}); got {shape_str(frames.shape)}")
        weights = torch.softmax(self.score(torch.tanh(self.proj(frames))).squeeze(-1), dim=1)  # (B, T)
        emit(self, weights)
        return torch.einsum("bt,btd->bd", weights, frames), weights  # (B, D)


class SpatialTemporalAttention(nn.Module):
    """A location softmax inside each frame, then :class:`TemporalAttention` over frames.

    ``(B, T, C, H, W)`` -> ``(c (B, C), spatial (B, T, H, W), temporal (B, T))``.

    Args:
        channels: ``C``.
        hidden: size of the temporal attention's hidden layer.

    Emits the spatial weights ``(B, T, H, W)`` under ``"<name>.spatial"``; its
    ``.temporal`` submodule emits the temporal weights.
    """

    def __init__(self, channels: int, hidden: int = 32) -> None:
        super().__init__()
        if channels < 1:
            raise ValueError(f"channels must be positive; got {channels}")
        self.channels = channels
        self.location = nn.Conv2d(channels, 1, 1)  # one score per location
        self.temporal = TemporalAttention(channels, hidden)

    def forward(self, features: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        check_rank(features, "features", 5, "(B, T, C, H, W)")
        check_floating(features, "features")
        if features.shape[2] != self.channels:
            raise ValueError(f"features must be (B, T, {self.channels}, H, W); got {shape_str(features.shape)}")
        B, T, C, H, W = features.shape
        flat = features.reshape(B * T, C, H, W)  # (B T, C, H, W)
        spatial = torch.softmax(self.location(flat).reshape(B * T, H * W), dim=1)  # (B T, H W)
        frame_vectors = torch.einsum("nl,ncl->nc", spatial, flat.reshape(B * T, C, H * W)).reshape(B, T, C)
        spatial_maps = spatial.reshape(B, T, H, W)
        emit(self, spatial_maps, tag="spatial")
        pooled, temporal = self.temporal(frame_vectors)
        return pooled, spatial_maps, temporal
