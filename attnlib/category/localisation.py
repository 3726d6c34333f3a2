"""Weakly supervised localisation: a classifier trained on labels only, its map scored as a box.

The toy on which the chapter measures ADL (:mod:`attnlib.arithmetic.attention_dropout`),
reverse attention (:mod:`attnlib.arithmetic.reverse_attention`), Grad-CAM and GAIN: a digit
somewhere on an empty canvas, a small CNN ending in global average pooling, and the class
activation map (CAM; Zhou, Khosla, Lapedriza, Oliva & Torralba, 2016, "Learning Deep Features
for Discriminative Localization", CVPR, arXiv:1512.04150) of the true class::

    M_c(x, y) = sum_k w_k^c f_k(x, y)           # (B, 1, h, w), w^c the head's row for class c

The map is upsampled to the image, thresholded at ``tau * max`` and the box around what
survives is compared with the box around the digit's ink (intersection over union,
:func:`box_iou`), the usual score of weakly supervised localisation; :func:`map_coverage` is
the share of the digit's ink inside the thresholded map.

:class:`LocalisationCNN` optionally inserts ADL after each convolution (``adl=True``) and a
second, erase-and-find head (``reverse=True``) in the manner of ACoL (Zhang, Wei, Feng, Yang &
Huang, 2018, "Adversarial Complementary Learning for Weakly Supervised Object Localization",
CVPR, arXiv:1804.06962): a second head classifies the features with what the first head's map
found erased, so it must find the class elsewhere, and the model's map combines both heads'
maps.  It differs from ACoL in three ways: it erases softly, weighting the features by
``1 - sigmoid(M)`` of the first head's map ``M`` (the reverse weighting of
:mod:`attnlib.arithmetic.reverse_attention`) where ACoL zeroes the places whose normalised
map exceeds a threshold; it erases with the map of the predicted class, where ACoL uses the
true class in training; and it adds the two maps, ``M + M_2``, where ACoL takes their
element-wise maximum.  A sum of two maps spreads wider than either, so a box thresholded at
a share of its maximum grows by construction: compare such a map with a plain CAM at a
matched box area, not only at one threshold.  ``reverse_erase=False`` is the control for the
second head itself: the same two heads, the second reading the features unweighted, so the
model's map is a sum of two plain CAMs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnlib._checks import check_feature_map, shape_str
from attnlib.arithmetic import AttentionDropout, reverse_attention_weights

__all__ = ["LocalisationConfig", "LocalisationCNN", "ink_boxes", "box_from_map", "box_iou", "map_coverage"]


@dataclass(frozen=True)
class LocalisationConfig:
    """Sizes and options of :class:`LocalisationCNN`.

    Attributes:
        channels: channels of the last feature map.
        classes: number of classes.
        adl: insert :class:`~attnlib.arithmetic.attention_dropout.AttentionDropout` after each convolution.
        adl_drop_rate, adl_gamma: ADL's settings.
        adl_per_image: ADL draws drop mask or importance map for each image (a variant) instead of
            once per batch (the paper).
        reverse: add the second, erase-and-find head (ACoL-style, soft erasing; see the module docstring).
        reverse_erase: the second head reads the features weighted by ``1 - sigmoid(M)``; ``False``
            is the control without erasing (two plain heads, the map a sum of two CAMs).
    """

    channels: int = 32
    classes: int = 10
    adl: bool = False
    adl_drop_rate: float = 0.75
    adl_gamma: float = 0.9
    adl_per_image: bool = False
    reverse: bool = False
    reverse_erase: bool = True


class LocalisationCNN(nn.Module):
    """Three convolutions (8, 16 and ``channels`` channels, 2x2 max pooling after the first),
    global average pooling, a linear head.

    ``(B, 1, S, S)`` images -> features ``(B, channels, S/2, S/2)`` -> logits ``(B, classes)``.
    """

    def __init__(self, config: LocalisationConfig = LocalisationConfig()) -> None:
        super().__init__()
        self.config = config
        c = config.channels

        def adl() -> nn.Module:
            if not config.adl:
                return nn.Identity()
            return AttentionDropout(config.adl_drop_rate, config.adl_gamma, per_image=config.adl_per_image)

        self.trunk = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            adl(),
            nn.Conv2d(8, 16, 3, padding=1),
            nn.ReLU(),
            adl(),
            nn.Conv2d(16, c, 3, padding=1),
            nn.ReLU(),
            adl(),
        )
        self.head = nn.Linear(c, config.classes)
        self.reverse_head = nn.Linear(c, config.classes) if config.reverse else None

    def features(self, images: Tensor) -> Tensor:
        """``(B, 1, S, S)`` -> ``(B, channels, S/2, S/2)``."""
        check_feature_map(images, "images", channels=1)
        return self.trunk(images)

    def classify(self, features: Tensor) -> Tensor:
        """Logits ``(B, classes)`` of the first head (global average pooling, linear)."""
        return self.head(features.mean(dim=(2, 3)))

    def _cam(self, head: nn.Linear, features: Tensor, classes: Tensor) -> Tensor:
        return torch.einsum("bk,bkhw->bhw", head.weight[classes], features)[:, None]  # (B, 1, h, w)

    def _reversed(self, features: Tensor, classes: Tensor) -> Tensor:
        if not self.config.reverse_erase:  # the control: the second head sees the same features
            return features
        first = self._cam(self.head, features, classes).detach()  # (B, 1, h, w)
        return features * reverse_attention_weights(first, (features.shape[2], features.shape[3]))  # (B, K, h, w)

    def forward(self, images: Tensor) -> Tensor:
        """Logits ``(B, classes)``; with the reverse head, the sum of both heads' logits."""
        features = self.features(images)
        logits = self.classify(features)
        if self.reverse_head is None:
            return logits
        reversed_features = self._reversed(features, logits.argmax(dim=-1))
        return logits + self.reverse_head(reversed_features.mean(dim=(2, 3)))

    @torch.no_grad()
    def cam(self, images: Tensor, classes: Tensor) -> Tensor:
        """The class activation map ``(B, 1, h, w)`` of ``classes (B,)`` (both heads' sum with ``reverse``)."""
        if classes.dtype != torch.long or tuple(classes.shape) != (images.shape[0],):
            raise ValueError(f"classes must be int64 of shape ({images.shape[0]},); got {shape_str(classes.shape)}")
        features = self.features(images)
        cam = self._cam(self.head, features, classes)
        if self.reverse_head is not None:
            cam = cam + self._cam(self.reverse_head, self._reversed(features, classes), classes)
        return cam


def ink_boxes(images: Tensor, threshold: float = 0.3) -> Tensor:
    """``(B, 4)`` int64 box ``(x0, y0, x1, y1)`` (inclusive) around the pixels above ``threshold``
    of ``images (B, 1, H, W)``; the whole image for an empty one."""
    check_feature_map(images, "images", channels=1)
    return box_from_map(images, threshold, relative=False)


def box_from_map(maps: Tensor, tau: float = 0.2, *, relative: bool = True) -> Tensor:
    """``(B, 4)`` int64 box ``(x0, y0, x1, y1)`` (inclusive) around the pixels of ``maps (B, 1, H, W)``
    at or above ``tau * max`` (``relative``) or above ``tau``; the whole map when none is."""
    check_feature_map(maps, "maps", channels=1)
    limit = tau * maps.amax(dim=(2, 3), keepdim=True) if relative else torch.full_like(maps[:, :, :1, :1], tau)
    keep = (maps >= limit) if relative else (maps > limit)  # (B, 1, H, W)
    keep = keep & (maps > 0) if relative else keep
    boxes = []
    H, W = maps.shape[-2:]
    for k in keep[:, 0]:
        ys, xs = torch.nonzero(k, as_tuple=True)
        if len(xs) == 0:
            boxes.append([0, 0, W - 1, H - 1])
        else:
            boxes.append([int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())])
    return torch.tensor(boxes, dtype=torch.long).reshape(-1, 4)


def box_iou(a: Tensor, b: Tensor) -> Tensor:
    """Intersection over union of inclusive pixel boxes ``a, b (B, 4)`` ``(x0, y0, x1, y1)`` -> ``(B,)``."""
    if a.shape != b.shape or a.dim() != 2 or a.shape[1] != 4:
        raise ValueError(f"a and b must both be (B, 4) boxes; got {shape_str(a.shape)} and {shape_str(b.shape)}")
    ix = (torch.minimum(a[:, 2], b[:, 2]) - torch.maximum(a[:, 0], b[:, 0]) + 1).clamp_min(0)
    iy = (torch.minimum(a[:, 3], b[:, 3]) - torch.maximum(a[:, 1], b[:, 1]) + 1).clamp_min(0)
    inter = (ix * iy).float()
    area_a = ((a[:, 2] - a[:, 0] + 1) * (a[:, 3] - a[:, 1] + 1)).float()
    area_b = ((b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)).float()
    return inter / (area_a + area_b - inter)


def map_coverage(maps: Tensor, images: Tensor, tau: float = 0.2, threshold: float = 0.3) -> Tensor:
    """Share of each digit's ink pixels (``images > threshold``) where the map, upsampled to the
    image, is at least ``tau * max``: ``maps (B, 1, h, w)``, ``images (B, 1, H, W)`` -> ``(B,)``."""
    check_feature_map(maps, "maps", channels=1)
    check_feature_map(images, "images", channels=1)
    up = F.interpolate(maps, size=images.shape[-2:], mode="bilinear", align_corners=False)  # (B, 1, H, W)
    hot = up >= tau * up.amax(dim=(2, 3), keepdim=True)
    ink = images > threshold
    return (hot & ink).flatten(1).sum(1).float() / ink.flatten(1).sum(1).clamp_min(1).float()
