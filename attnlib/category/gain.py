"""GAIN: guided attention inference, training a classifier's Grad-CAM to cover the whole object.

Li, Wu, Peng, Ernst & Fu (2018), "Tell Me Where to Look: Guided Attention Inference
Network", CVPR, arXiv:1802.10171.  The class's Grad-CAM map ``A``
(:func:`~attnlib.category.grad_cam.grad_cam`) is turned into a soft mask (their Eq. 3),
which erases the attended region from the image (Eq. 2)::

    T(A) = sigmoid(omega (A - sigma))          # A normalised to [0, 1] per image
    I*   = I - T(A) * I

and the *attention-mining loss* is the classifier's own softmax score for the true class on
the erased image (Eq. 4), ``L_am = mean_n s^c(I*_n)``.  Training on
``L = L_cl + alpha L_am`` (Eq. 5) pushes the map to cover everything that lets the network
recognise the class: if anything recognisable survives the erasing, the map grew too
little.  The gradient flows through ``A`` itself (Grad-CAM with ``create_graph=True``).

:func:`gain_loss` needs a model with two methods, ``features(images) -> (B, K, H, W)`` and
``classify(features) -> (B, classes)`` (the :class:`FeatureClassifier` protocol).
"""

from __future__ import annotations

from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

from attnlib._checks import check_feature_map, shape_str
from attnlib.category.grad_cam import grad_cam

__all__ = ["FeatureClassifier", "soft_mask", "gain_loss"]


class FeatureClassifier(Protocol):
    """A classifier split into a convolutional trunk and a head."""

    def features(self, images: Tensor) -> Tensor: ...  # (B, C, h, w) -> (B, K, H, W)

    def classify(self, features: Tensor) -> Tensor: ...  # (B, K, H, W) -> (B, classes)


def soft_mask(attention: Tensor, omega: float = 10.0, sigma: float = 0.5) -> Tensor:
    """``sigmoid(omega (A / max A - sigma))`` of ``attention (B, 1, H, W)``, same shape (GAIN's Eq. 3).

    Raises:
        ValueError: ``attention`` not a floating-point ``(B, 1, H, W)`` map, or ``omega <= 0``.
    """
    check_feature_map(attention, "attention", channels=1)
    if omega <= 0:
        raise ValueError(f"omega must be positive; got {omega}")
    normalised = attention / attention.amax(dim=(2, 3), keepdim=True).clamp_min(1e-8)  # (B, 1, H, W)
    return torch.sigmoid(omega * (normalised - sigma))


def gain_loss(
    model: FeatureClassifier,
    images: Tensor,
    labels: Tensor,
    *,
    alpha: float = 1.0,
    omega: float = 10.0,
    sigma: float = 0.5,
) -> tuple[Tensor, Tensor, Tensor]:
    """GAIN's loss ``L_cl + alpha L_am`` (Eq. 5) on a batch.

    Args:
        model: a :class:`FeatureClassifier`.
        images: ``(B, C, H, W)``.
        labels: ``(B,)`` int64 classes (the map is the true class's).
        alpha: weight of the attention-mining loss.
        omega, sigma: the soft mask's sharpness and threshold.

    Returns:
        ``(total, classification loss, attention-mining loss)``, scalars.

    Raises:
        ValueError: ``labels`` of the wrong shape or dtype.
    """
    check_feature_map(images, "images")
    if labels.dtype != torch.long or tuple(labels.shape) != (images.shape[0],):
        raise ValueError(
            f"labels must be int64 of shape ({images.shape[0]},); got {shape_str(labels.shape)} {labels.dtype}"
        )
    features = model.features(images)  # (B, K, h, w)
    logits = model.classify(features)  # (B, classes)
    classification = F.cross_entropy(logits, labels)
    scores = logits.gather(1, labels[:, None])[:, 0]  # (B,)
    attention = grad_cam(features, scores, create_graph=True)  # (B, 1, h, w)
    mask = soft_mask(attention, omega, sigma)  # (B, 1, h, w)
    mask = F.interpolate(mask, size=images.shape[-2:], mode="bilinear", align_corners=False)  # (B, 1, H, W)
    erased = images - mask * images  # (B, C, H, W)
    mining = torch.softmax(model.classify(model.features(erased)), dim=-1).gather(1, labels[:, None]).mean()
    return classification + alpha * mining, classification, mining
