"""Multi-scale attention: per-pixel soft weights over features computed at several scales.

Adapted from Chen, Yang, Wang, Xu & Yuille, "Attention to Scale: Scale-aware Semantic
Image Segmentation", CVPR 2016 (arXiv:1511.03339).

In the paper one shared network runs on the image resized to several scales ``s`` (1,
0.75 and 0.5), each output is resized back, and a small attention network gives, at every
pixel ``i``, one score ``h_i^s`` per scale; a softmax over the scales turns them into
weights ``w_i^s`` and the fused output is ``g_i = sum_s w_i^s f_i^s``. The weights
generalise average pooling over scales (all equal) and max pooling (one-hot), and show
which scale each pixel relied on.

As a drop-in module on a feature map ``x`` (``(B, C, H, W)``) we keep that recipe and
make three adaptations, stated here so nobody mistakes them for the paper's:

* the shared network is one 3x3 convolution with batch normalisation and ReLU, applied to
  ``x`` average-pooled to each scale (``round(s H) x round(s W)``), then upsampled
  bilinearly back to ``H x W``: ``f^s``, ``(B, C, H, W)``;
* the attention network (3x3 convolution to ``C / r`` channels, ReLU, 1x1 convolution to
  one score per scale) reads the module's input ``x`` rather than the paper's final
  features;
* the fused features are added to the input, ``y = x + sum_s w^s f^s``, so the module
  adds multi-scale context to what it receives instead of replacing it.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnlib._checks import check_feature_map
from attnlib.record import emit

__all__ = ["MultiScaleAttention"]


class MultiScaleAttention(nn.Module):
    """Attention to scale (Chen et al., 2016), as a residual drop-in module.

    Shapes:
        ``x`` ``(B, C, H, W)`` -> ``x + sum_s w^s f^s`` ``(B, C, H, W)``, with the shared
        network's features at every scale ``f`` ``(B, S, C, H, W)`` (:meth:`scale_features`) and
        the per-pixel weights over scales ``w`` ``(B, S, H, W)``, a softmax over the ``S`` axis
        (:meth:`weights`). Emits ``w`` to :mod:`attnlib.record` on every call.

    Args:
        channels: ``C``.
        scales: resize factors in ``(0, 1]``, one branch each (the paper's best set:
            1, 0.75, 0.5).
        reduction: ``r``; the attention network's hidden layer has ``max(C // r, 1)``
            channels.

    Raises:
        ValueError: for a non-positive size, an empty ``scales`` or a scale outside ``(0, 1]``;
            on a call, if ``x`` is not 4-D, does not have ``C`` channels, or is not floating point
            (an integer or uint8 image: convert it with ``.float()``).
    """

    def __init__(self, channels: int, scales: Sequence[float] = (1.0, 0.75, 0.5), reduction: int = 4) -> None:
        super().__init__()
        scales = tuple(float(s) for s in scales)
        if channels < 1 or reduction < 1:
            raise ValueError(f"channels and reduction must be positive; got channels={channels}, reduction={reduction}")
        if not scales or any(not 0.0 < s <= 1.0 for s in scales):
            raise ValueError(f"scales must be a non-empty sequence of factors in (0, 1]; got {scales}")
        self.channels, self.scales, self.reduction = channels, scales, reduction
        hidden = max(channels // reduction, 1)
        self.shared = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels), nn.ReLU()
        )
        self.score = nn.Sequential(
            nn.Conv2d(channels, hidden, 3, padding=1), nn.ReLU(), nn.Conv2d(hidden, len(scales), 1)
        )

    def scale_features(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, S, C, H, W): the shared network's features at every scale, resized back."""
        H, W = x.shape[-2:]
        features = []
        for s in self.scales:
            size = (max(1, round(s * H)), max(1, round(s * W)))
            xs = x if size == (H, W) else F.adaptive_avg_pool2d(x, size)  # (B, C, sH, sW)
            fs = self.shared(xs)  # (B, C, sH, sW)
            if size != (H, W):
                fs = F.interpolate(fs, size=(H, W), mode="bilinear", align_corners=False)  # (B, C, H, W)
            features.append(fs)
        return torch.stack(features, dim=1)  # (B, S, C, H, W)

    def weights(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, S, H, W): the per-pixel weights over scales, a softmax over ``S``."""
        check_feature_map(x, "x", self.channels)
        return torch.softmax(self.score(x), dim=1)  # (B, S, H, W)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, C, H, W): ``x + sum_s w^s f^s``, the input plus its multi-scale context."""
        w = self.weights(x)  # (B, S, H, W)
        emit(self, w)
        f = self.scale_features(x)  # (B, S, C, H, W)
        return x + (w.unsqueeze(2) * f).sum(dim=1)  # (B, C, H, W)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, scales={self.scales}, reduction={self.reduction}"
