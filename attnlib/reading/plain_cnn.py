"""A plain convolutional encoder for strips: the baseline of the recursive and recurrent ones.

The conventional design (as in the CNN of Shi, Bai & Yao's CRNN, 2015, arXiv:1507.05717,
cut down): a stack of ``depth`` 3x3 convolutions, each with its own weights, batch
normalisation and a ReLU, with a 2x2 max-pool after the first and after the last::

    x_1 = pool(f(BN(w_1 * u)));   x_l = f(BN(w_l * x_(l-1))), l = 2..depth;   out = pool(x_depth)

At ``depth = T + 2`` it has the depth of :class:`~attnlib.reading.recursive_conv.RecursiveConvEncoder`
with ``T`` steps, and the parameters of its untied twin (plus the normalisation's).
"""

from __future__ import annotations

from torch import Tensor, nn

from .._checks import check_feature_map

__all__ = ["PlainCNNEncoder"]


class PlainCNNEncoder(nn.Module):
    """``depth`` conv-BN-ReLU layers with untied weights: ``(B, C_in, H, W)`` -> ``(B, C, H/4, W/4)``.

    Args:
        in_channels: image channels.
        channels: ``C`` of every layer.
        depth: number of convolutions, at least 1.
    """

    def __init__(self, in_channels: int = 1, channels: int = 32, depth: int = 5) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1; got {depth}")
        self.in_channels = in_channels
        self.out_channels = channels
        self.depth = depth
        layers: list[nn.Module] = []
        for i in range(depth):
            layers += [nn.Conv2d(in_channels if i == 0 else channels, channels, 3, padding=1, bias=False)]
            layers += [nn.BatchNorm2d(channels), nn.ReLU()]
            if i == 0:
                layers.append(nn.MaxPool2d(2))
        layers.append(nn.MaxPool2d(2))
        self.layers = nn.Sequential(*layers)

    def forward(self, images: Tensor) -> Tensor:
        """``images`` ``(B, C_in, H, W)`` -> ``(B, C, H/4, W/4)``."""
        check_feature_map(images, "images", self.in_channels)
        return self.layers(images)  # (B, C, H/4, W/4)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
