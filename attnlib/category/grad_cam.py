"""Grad-CAM: the attention a classifier pays to each place, for one category.

Selvaraju, Cogswell, Das, Vedantam, Parikh & Batra (2017), "Grad-CAM: Visual Explanations
from Deep Networks via Gradient-based Localization", ICCV, arXiv:1610.02391.  For the score
``y^c`` of class ``c`` (before the softmax) and a convolutional feature map
``A (B, K, H, W)`` it depends on, the weight of channel ``k`` is its gradient averaged over
the map, and the map is their weighted, rectified sum (their Eqs. 1-2)::

    alpha_k^c = (1 / HW) sum_ij d y^c / d A_k,ij      # (B, K)
    L^c       = ReLU(sum_k alpha_k^c A_k)             # (B, 1, H, W)

The attention is *category-based*: a different class gives a different map from the same
features.  With ``create_graph=True`` the map stays differentiable in the network's weights,
as GAIN (:mod:`attnlib.category.gain`) needs to train through it.
"""

from __future__ import annotations

import torch
from torch import Tensor

from attnlib._checks import check_feature_map, check_rank, shape_str

__all__ = ["grad_cam"]


def grad_cam(features: Tensor, scores: Tensor, *, create_graph: bool = False) -> Tensor:
    """Grad-CAM of ``scores`` with respect to ``features``.

    Args:
        features: ``A``, ``(B, K, H, W)``, part of the graph that computed ``scores``.
        scores: ``(B,)``: each image's score ``y^c`` for the class of interest (a logit).
        create_graph: keep the map differentiable (for training through it).

    Returns:
        ``(B, 1, H, W)``, non-negative.

    Raises:
        ValueError: wrong shapes, or ``scores`` that do not depend on ``features``.
    """
    check_feature_map(features, "features")
    check_rank(scores, "scores", 1, "(B,)")
    if scores.shape[0] != features.shape[0]:
        raise ValueError(
            f"scores must have one entry per image, shape ({features.shape[0]},); got {shape_str(scores.shape)}"
        )
    if not scores.requires_grad:
        raise ValueError("scores must be computed from features with autograd on (they do not require grad)")
    (grads,) = torch.autograd.grad(scores.sum(), features, create_graph=create_graph)  # (B, K, H, W)
    alpha = grads.mean(dim=(2, 3), keepdim=True)  # (B, K, 1, 1)
    return torch.relu((alpha * features).sum(dim=1, keepdim=True))  # (B, 1, H, W)
