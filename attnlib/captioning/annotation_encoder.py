"""The annotation encoder: a small CNN that turns an image into a grid of annotation vectors.

Xu et al., *Show, Attend and Tell: Neural Image Caption Generation with Visual Attention*,
ICML 2015 (arXiv:1502.03044), section 3.1.1: the encoder produces ``L`` vectors

    a = {a_1, ..., a_L},  a_i in R^D,

one per location of a convolutional feature map, so that the decoder can attend to a part
of the image by weighting them.  The paper takes a 14 x 14 x 512 feature map of a VGG
network pretrained on ImageNet (``L = 196``, ``D = 512``) and does not fine-tune it.  Ours is
small and trained here from scratch: ``len(channels)`` blocks of a
3 x 3 convolution, a ReLU and a 2 x 2 max-pool, so a 48 x 48 image gives a 6 x 6 grid
(``L = 36``) of ``D = channels[-1]`` features.

The paper's encoder was first trained for something else (ImageNet classification) and
then kept fixed.  :class:`DigitClassifier` does the same here: it trains the encoder to
name the one digit of a scene from its most active cell (a max over the grid, so every
cell learns to recognise a digit wherever it stands); the captioner then uses the frozen
encoder, whose annotations can be computed once per image.
"""

from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn

from attnlib._checks import check_feature_map, shape_str

__all__ = ["AnnotationEncoder", "DigitClassifier"]


class AnnotationEncoder(nn.Module):
    """CNN ``(B, C, H, W)`` -> annotation vectors ``(B, L, D)`` with ``L = (H / 2^k)(W / 2^k)``, ``k`` blocks.

    Args:
        in_channels: ``C`` (1 for MNIST scenes).
        channels: output channels of each conv-ReLU-pool block; ``D = channels[-1]``.
    """

    def __init__(self, in_channels: int = 1, channels: Sequence[int] = (8, 16, 32)) -> None:
        super().__init__()
        if not channels or min(channels) < 1:
            raise ValueError(f"channels must be a non-empty sequence of positive sizes; got {tuple(channels)}")
        self.in_channels = in_channels
        self.factor = 2 ** len(channels)
        self.annotation_dim = int(channels[-1])
        layers: list[nn.Module] = []
        previous = in_channels
        for width in channels:
            layers += [nn.Conv2d(previous, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            previous = width
        self.features = nn.Sequential(*layers)

    def grid(self, height: int, width: int) -> tuple[int, int]:
        """``(h, w)`` of the annotation grid of an ``height x width`` image."""
        return height // self.factor, width // self.factor

    def forward(self, images: Tensor) -> Tensor:
        """``images (B, C, H, W)`` -> annotations ``(B, L, D)``, cells in row-major order.

        Raises:
            ValueError: if the images do not have ``in_channels`` channels or their sides are
                not divisible by ``2 ** len(channels)``.
        """
        check_feature_map(images, "images", self.in_channels)
        if images.shape[2] % self.factor or images.shape[3] % self.factor:
            raise ValueError(
                f"image sides must be divisible by {self.factor} (one halving per block); "
                f"got images {shape_str(images.shape)}"
            )
        maps = self.features(images)  # (B, D, h, w)
        return maps.flatten(2).transpose(1, 2)  # (B, D, L) -> (B, L, D)


class DigitClassifier(nn.Module):
    """Pretraining head: ``logits = W max_i a_i + b``, ``(B, C, H, W)`` -> ``(B, classes)``.

    Args:
        encoder: the :class:`AnnotationEncoder` to train (shared, not copied).
        classes: number of classes (10 digits).
    """

    def __init__(self, encoder: AnnotationEncoder, classes: int = 10) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.annotation_dim, classes)

    def forward(self, images: Tensor) -> Tensor:
        annotations = self.encoder(images)  # (B, L, D)
        return self.head(annotations.amax(dim=1))  # (B, D) -> (B, classes)
