"""The attention module of the Residual Attention Network: a trunk and a soft mask.

Wang, Jiang, Qian, Yang, Li, Zhang, Wang & Tang, "Residual Attention Network for Image
Classification", CVPR 2017 (arXiv:1704.06904).

The module has two branches over its input ``x`` (``(B, C, H, W)``), after ``p``
pre-processing residual units:

* the **trunk** ``T(x)``: ``t`` residual units, ordinary feature processing;
* the **soft mask** ``M(x)``, a small hourglass: *bottom-up*, max pooling (3x3, stride 2)
  followed by ``r`` residual units, repeated ``depth`` times, widens the receptive field
  quickly; *top-down*, ``r`` residual units and a bilinear upsampling back to the size of
  the level above, repeated as many times, with a skip connection (one residual unit)
  adding each bottom-up scale to the top-down path at the same scale; then two 1x1
  convolutions and a sigmoid give ``M`` of shape ``(B, C, H, W)``, values in ``(0, 1)``.

The output is not ``M * T`` but

    H = (1 + M) * T            ("attention residual learning"),

followed by ``p`` more residual units. A mask in ``(0, 1)`` can only attenuate: a stack
of ``M * T`` modules multiplies features by many numbers below one and shrinks them layer
after layer, and a mask near zero also blocks the gradient to the trunk. With ``1 + M``
the trunk passes through unchanged where the mask is zero, and the mask can only enhance.
``residual_learning=False`` gives the plain ``M * T`` (the paper's "naive attention
learning") for comparison.

The residual units are the pre-activation bottlenecks the paper uses
(BN-ReLU-1x1-BN-ReLU-3x3-BN-ReLU-1x1, plus the identity, with ``C / 4`` inner channels).
The paper's defaults are ``p = 1, t = 2, r = 1``; it uses ``depth = 3, 2, 1`` in its three
stages as the feature maps shrink from 56x56 to 14x14.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from attnlib._checks import check_feature_map
from attnlib.record import emit

__all__ = ["PreActBottleneck", "ResidualAttention"]


class PreActBottleneck(nn.Module):
    """A pre-activation bottleneck residual unit, ``x + f(x)``, shape-preserving.

    Args:
        channels: ``C`` in and out; the inner convolutions use ``max(C // 4, 1)`` channels.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        inner = max(channels // 4, 1)
        self.body = nn.Sequential(
            nn.BatchNorm2d(channels), nn.ReLU(), nn.Conv2d(channels, inner, 1, bias=False),
            nn.BatchNorm2d(inner), nn.ReLU(), nn.Conv2d(inner, inner, 3, padding=1, bias=False),
            nn.BatchNorm2d(inner), nn.ReLU(), nn.Conv2d(inner, channels, 1, bias=False),
        )  # fmt: skip

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, H, W) -> (B, C, H, W)``."""
        return x + self.body(x)  # (B, C, H, W)


def _units(channels: int, n: int) -> nn.Sequential:
    return nn.Sequential(*(PreActBottleneck(channels) for _ in range(n)))


class ResidualAttention(nn.Module):
    """Attention module of the Residual Attention Network (Wang et al., 2017).

    Shapes:
        ``x`` ``(B, C, H, W)`` -> ``post((1 + M) * T)`` ``(B, C, H, W)`` of the pre-processed
        input (``post(M * T)`` without residual learning), with the soft mask ``M`` of shape
        ``(B, C, H, W)``, values in ``(0, 1)``. Emits ``M`` to :mod:`attnlib.record` on every
        call (its mean over channels is the spatial picture).

    Args:
        channels: ``C``.
        p: residual units before the split and after the merge (1).
        t: residual units in the trunk (2).
        r: residual units between adjacent pooling layers of the mask branch (1).
        depth: number of max-pooling (and upsampling) steps of the mask branch (1 suits
            maps of about 7x7 to 14x14; the paper uses 3, 2, 1 from 56x56 down).
        residual_learning: output ``(1 + M) * T`` (True, the paper) or ``M * T`` (False).

    Raises:
        ValueError: if ``channels`` or ``depth`` is below 1, or ``p``, ``t``, ``r`` are negative;
            on a call, if ``x`` is not 4-D, does not have ``C`` channels, or is not floating point
            (an integer or uint8 image: convert it with ``.float()``).
    """

    def __init__(
        self,
        channels: int,
        p: int = 1,
        t: int = 2,
        r: int = 1,
        depth: int = 1,
        residual_learning: bool = True,
    ) -> None:
        super().__init__()
        if channels < 1 or depth < 1 or min(p, t, r) < 0:
            raise ValueError(
                f"need channels >= 1, depth >= 1 and p, t, r >= 0; got channels={channels}, depth={depth}, "
                f"p={p}, t={t}, r={r}"
            )
        self.channels, self.p, self.t, self.r, self.depth = channels, p, t, r, depth
        self.residual_learning = residual_learning
        self.pre = _units(channels, p)
        self.trunk = _units(channels, t)
        self.down = nn.ModuleList(_units(channels, r) for _ in range(depth))
        self.skips = nn.ModuleList(_units(channels, 1) for _ in range(depth - 1))
        self.up = nn.ModuleList(_units(channels, r) for _ in range(depth))
        self.mask_head = nn.Sequential(
            nn.BatchNorm2d(channels), nn.ReLU(), nn.Conv2d(channels, channels, 1, bias=False),
            nn.BatchNorm2d(channels), nn.ReLU(), nn.Conv2d(channels, channels, 1), nn.Sigmoid(),
        )  # fmt: skip
        self.post = _units(channels, p)

    def mask(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, C, H, W): the soft mask branch on (pre-processed) features, in ``(0, 1)``."""
        sizes, skips = [], []
        h = x
        for level in range(self.depth):  # bottom-up
            sizes.append(h.shape[-2:])
            h = F.max_pool2d(h, kernel_size=3, stride=2, padding=1)  # (B, C, ceil(H/2), ceil(W/2))
            h = self.down[level](h)
            if level < self.depth - 1:
                skips.append(self.skips[level](h))
        for level in reversed(range(self.depth)):  # top-down
            h = self.up[level](h)
            h = F.interpolate(h, size=sizes[level], mode="bilinear", align_corners=False)  # (B, C, size of level)
            if level > 0:
                h = h + skips[level - 1]  # skip connection from the same scale
        return self.mask_head(h)  # (B, C, H, W)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, C, H, W): ``post((1 + M) * T)`` of the pre-processed input."""
        check_feature_map(x, "x", self.channels)
        x = self.pre(x)  # (B, C, H, W)
        trunk = self.trunk(x)  # (B, C, H, W)
        m = self.mask(x)  # (B, C, H, W)
        emit(self, m)
        out = (1 + m) * trunk if self.residual_learning else m * trunk  # (B, C, H, W)
        return self.post(out)  # (B, C, H, W)

    def extra_repr(self) -> str:
        return (
            f"channels={self.channels}, p={self.p}, t={self.t}, r={self.r}, depth={self.depth}, "
            f"residual_learning={self.residual_learning}"
        )
