"""The deletion curve: does a saliency map rank the patches a classifier actually uses?

Petsiuk, Das & Saenko, "RISE: Randomized Input Sampling for Explanation of Black-box
Models", BMVC 2018 (arXiv:1806.07421), section 4.1, the *deletion* metric: remove the
input's parts in the order a map ranks them, most important first, and follow the
probability the classifier gives the class. A faithful map makes it fall fast; the area
under the curve (lower is better) summarises it, and the same curve for a random order is
the reference any map must beat.

Here the parts are the ``P x P`` patches of a patch grid (those of a Vision Transformer):
for ``k = 0 .. N`` the ``k`` highest-scoring patches are replaced by ``fill`` and the
softmax probability of the target class is recorded,

    p_k = softmax(f(x_k))[y],   x_k = x with the top-k patches set to fill,

giving a ``(B, N + 1)`` curve whose column 0 is the intact image and column ``N`` an image
with every patch deleted.  :func:`deletion_area` is the mean of the curve over ``k``
(the trapezoid rule on ``[0, 1]``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from attnlib._checks import check_feature_map, check_rank, shape_str

__all__ = ["deletion_area", "deletion_curve"]


@torch.no_grad()
def deletion_curve(
    model: nn.Module,
    images: Tensor,
    targets: Tensor,
    scores: Tensor,
    patch_size: int,
    fill: float = 0.0,
) -> Tensor:
    """Probability of ``targets`` as patches are deleted in decreasing order of ``scores``.

    Args:
        model: a classifier, ``(B, C, H, W) -> (B, classes)`` logits; called as it is (put
            it in eval mode first).
        images: ``(B, C, H, W)``, ``H`` and ``W`` multiples of ``patch_size``.
        targets: ``(B,)`` class indices whose probability is followed.
        scores: ``(B, h, w)`` or ``(B, h * w)``, one score per patch in row-major order,
            ``h = H / patch_size``, ``w = W / patch_size``; higher is deleted first (ties in
            row-major order).
        patch_size: ``P``, the side of a patch in pixels.
        fill: the value a deleted pixel takes (in the model's input units).

    Returns:
        ``(B, N + 1)`` with ``N = h * w``: column ``k`` is the probability of the target
        after deleting the ``k`` highest-scoring patches.

    Raises:
        ValueError: images not ``(B, C, H, W)`` or not divisible into patches, or targets or
            scores whose shapes do not match the batch and the patch grid.
    """
    check_feature_map(images, "images")
    B, _, H, W = images.shape  # (B, C, H, W)
    if patch_size < 1 or H % patch_size or W % patch_size:
        raise ValueError(
            f"images of shape {shape_str(images.shape)} must divide into patches of patch_size={patch_size}"
        )
    h, w = H // patch_size, W // patch_size
    N = h * w
    check_rank(targets, "targets", 1, "(B,)")
    if targets.shape[0] != B:
        raise ValueError(f"targets must have shape ({B},) for {B} images; got {shape_str(targets.shape)}")
    flat = scores.reshape(scores.shape[0], -1) if scores.dim() >= 2 else scores  # (B, N)
    if scores.dim() not in (2, 3) or flat.shape != (B, N):
        raise ValueError(
            f"scores must have shape ({B}, {h}, {w}) or ({B}, {N}), one per patch; got {shape_str(scores.shape)}"
        )
    order = torch.argsort(flat, dim=1, descending=True, stable=True)  # (B, N): patch indices, most salient first
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(N, device=order.device).expand(B, N))  # (B, N): each patch's position
    curve = images.new_empty(B, N + 1)
    for k in range(N + 1):
        deleted = (rank < k).to(images.dtype).view(B, 1, h, w)  # (B, 1, h, w): 1 where a patch is gone
        pixels = deleted.repeat_interleave(patch_size, dim=2).repeat_interleave(patch_size, dim=3)  # (B, 1, H, W)
        x = images * (1 - pixels) + fill * pixels  # (B, C, H, W)
        probs = model(x).softmax(dim=-1)  # (B, classes)
        curve[:, k] = probs.gather(1, targets[:, None].long())[:, 0]
    return curve


def deletion_area(curve: Tensor) -> Tensor:
    """Area under deletion curves ``(B, N + 1)`` over ``k / N`` in ``[0, 1]`` (trapezoid rule): ``(B,)``.

    Lower means the probability fell sooner, i.e. the order deleted what the model used first.
    """
    check_rank(curve, "curve", 2, "(B, N + 1)")
    if curve.shape[1] < 2:
        raise ValueError(
            f"curve must have at least two points, shape (B, N + 1) with N >= 1; got {shape_str(curve.shape)}"
        )
    return torch.trapezoid(curve, dx=1.0 / (curve.shape[1] - 1), dim=1)
