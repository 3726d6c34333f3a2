"""Dynamic Capacity Network: a cheap look everywhere, an expensive look where it matters.

Almahairi, Ballas, Cooijmans, Zheng, Larochelle & Courville, "Dynamic Capacity
Networks", ICML 2016 (arXiv:1511.07838).  Section 2 of the paper, in our notation:

1. **Coarse layers** ``f_c`` (low capacity) run over the whole input ``x`` ``(B, C, H, W)``
   and give a feature map ``c = f_c(x)`` ``(B, D, h, w)``; cell ``(i, j)`` covers the
   ``cell x cell`` input pixels ``[i*cell, (i+1)*cell) x [j*cell, (j+1)*cell)``.
2. **Top layers** ``g`` classify any such map.  On the coarse map they give
   ``p_c = softmax(g(c))`` and its entropy ``H = -sum_y p_c(y) log p_c(y)``.
3. **Saliency**: how much the prediction's uncertainty depends on each cell,
   ``s_ij = || dH / dc_ij ||_2`` (the norm over the ``D`` channels), shape ``(B, 1, h, w)``.
4. **Attention**: the ``k`` cells of highest saliency are chosen (ties broken by
   position); for each, the input patch of side ``patch`` centred on the cell (zeros
   outside the image) goes through the **fine layers** ``f_f`` (high capacity), which give a
   ``D``-vector.
5. The fine vectors **replace** the coarse ones at the chosen cells, and ``g`` classifies
   the refined map: the network's output.

Training (section 2.2 of the paper): the loss of the refined output, the loss of the
coarse output (so that the coarse path stays a usable classifier and its entropy a useful
signal), and a **hint** term ``|| c_ij - f_f(x_ij) ||^2`` at the chosen cells that pulls
the coarse features towards the fine ones, with the fine features held fixed as targets.
:meth:`DynamicCapacityNetwork.loss` implements these three terms with weights from
:class:`DCNConfig`.  The selection itself is discrete and gets no gradient, as in the paper.

The module emits the saliency map ``(B, 1, h, w)``; :func:`select_top_k` turns it into the
chosen cells.  Layer sizes are ours (see :class:`DCNConfig`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnlib._checks import check_feature_map, check_rank
from attnlib.record import emit

__all__ = ["DCNConfig", "DCNOutput", "DynamicCapacityNetwork", "entropy_saliency", "select_top_k", "extract_patches"]


def entropy_saliency(top: nn.Module, coarse: Tensor) -> Tensor:
    """Saliency ``|| dH / dc_ij ||_2`` of the entropy of ``softmax(top(coarse))``.

    Args:
        top: maps ``(B, D, h, w)`` feature maps to ``(B, classes)`` logits.
        coarse: ``(B, D, h, w)`` coarse features (used detached: no gradient flows back).

    Returns:
        ``(B, 1, h, w)`` non-negative saliency, detached.
    """
    check_rank(coarse, "coarse", 4, "(B, D, h, w)")
    with torch.enable_grad():
        c = coarse.detach().requires_grad_(True)
        log_p = F.log_softmax(top(c), dim=-1)  # (B, classes)
        entropy = -(log_p.exp() * log_p).sum()  # summed over the batch: examples do not interact
        (grad,) = torch.autograd.grad(entropy, c)  # (B, D, h, w)
    return grad.norm(dim=1, keepdim=True)  # (B, 1, h, w)


def select_top_k(saliency: Tensor, k: int) -> Tensor:
    """The ``k`` cells of highest saliency, most salient first.

    Args:
        saliency: ``(B, 1, h, w)``.
        k: ``1 <= k <= h * w``.

    Returns:
        ``(B, k, 2)`` int64 ``(row, column)`` of the chosen cells.
    """
    check_rank(saliency, "saliency", 4, "(B, 1, h, w)")
    B, _, h, w = saliency.shape
    if not 1 <= k <= h * w:
        raise ValueError(f"k must lie in [1, h * w = {h * w}]; got {k}")
    flat = saliency.reshape(B, h * w)  # (B, h*w)
    index = torch.topk(flat, k, dim=1, sorted=True).indices  # (B, k)
    return torch.stack([index // w, index % w], dim=-1)  # (B, k, 2)


def extract_patches(x: Tensor, locations: Tensor, cell: int, patch: int) -> Tensor:
    """Input patches of side ``patch`` centred on the given cells (zeros outside ``x``).

    Args:
        x: ``(B, C, H, W)``.
        locations: ``(B, k, 2)`` ``(row, column)`` cells of a grid of ``cell``-pixel cells.
        cell: cell side in input pixels.
        patch: patch side, ``>= cell`` with ``patch - cell`` even.

    Returns:
        ``(B, k, C, patch, patch)``.
    """
    check_rank(x, "x", 4, "(B, C, H, W)")
    check_rank(locations, "locations", 3, "(B, k, 2)")
    if patch < cell or (patch - cell) % 2:
        raise ValueError(f"patch must be >= cell with patch - cell even; got patch={patch}, cell={cell}")
    margin = (patch - cell) // 2
    B, C, H, W = x.shape
    padded = F.pad(x, (margin, margin + patch, margin, margin + patch))  # room for cells at the border
    offsets = torch.arange(patch, device=x.device)  # (p,)
    rows = locations[..., 0, None] * cell + offsets  # (B, k, p) rows in the padded image
    cols = locations[..., 1, None] * cell + offsets  # (B, k, p)
    batch = torch.arange(B, device=x.device)[:, None, None, None]  # (B, 1, 1, 1)
    picked = padded.permute(0, 2, 3, 1)[batch, rows[..., :, None], cols[..., None, :]]  # (B, k, p, p, C)
    return picked.permute(0, 1, 4, 2, 3)  # (B, k, C, p, p)


@dataclass(frozen=True)
class DCNConfig:
    """Sizes of a Dynamic Capacity Network (ours, scaled for MNIST digits in a canvas)."""

    in_channels: int = 1  # grey images
    num_classes: int = 10  # digits
    cell: int = 12  # input pixels per coarse cell: the coarse layers' stride (4 x 4 cells on 48 x 48)
    patch: int = 24  # the fine layers read a 24 x 24 patch around a 12 x 12 cell: most of a digit
    features: int = 32  # D, shared by coarse and fine features
    coarse_channels: int = 8  # low capacity: one strided conv of 8 filters, then 1x1 to D
    fine_channels: tuple[int, int] = (16, 32)  # high capacity: three 3x3 convs, two poolings
    k: Optional[int] = 3  # cells refined per image; None refines every cell (fine everywhere)
    coarse_weight: float = 1.0  # weight of the coarse output's loss
    hint_weight: float = 0.01  # weight of the hint term (its squared distances are large)


@dataclass
class DCNOutput:
    """Everything a forward pass computed (see :meth:`DynamicCapacityNetwork.forward_details`).

    Attributes:
        logits: ``(B, classes)`` of the refined map.
        coarse_logits: ``(B, classes)`` of the coarse map (``None`` when every cell is refined).
        saliency: ``(B, 1, h, w)`` (``None`` when every cell is refined).
        locations: ``(B, k, 2)`` chosen ``(row, column)`` cells, most salient first.
        hint: scalar mean squared distance between chosen coarse and fine features.
    """

    logits: Tensor
    coarse_logits: Optional[Tensor]
    saliency: Optional[Tensor]
    locations: Tensor
    hint: Tensor


class DynamicCapacityNetwork(nn.Module):
    """Coarse layers everywhere, fine layers on the ``k`` most salient cells, shared top layers.

    Shapes:
        input ``(B, C, H, W)`` (any size; ``h = ceil(H / cell)``, ``w = ceil(W / cell)``)
        -> logits ``(B, classes)``; coarse features ``(B, D, h, w)``.  Emits the saliency
        ``(B, 1, h, w)`` to :mod:`attnlib.record` on every call that chooses cells (not when
        ``k`` is ``None`` or covers every cell).

    Args:
        config: the sizes and loss weights; default :class:`DCNConfig`.

    Raises:
        ValueError: if ``config.patch`` is smaller than ``config.cell`` or differs from it by an
            odd number; on a call, if ``x`` is not 4-D, does not have ``in_channels`` channels,
            or is not floating point (an integer or uint8 image: convert it with ``.float()``).
    """

    def __init__(self, config: DCNConfig = DCNConfig()) -> None:
        super().__init__()
        self.config = config
        c, d = config.in_channels, config.features
        f1, f2 = config.fine_channels
        self.coarse = nn.Sequential(
            nn.Conv2d(c, config.coarse_channels, config.cell, stride=config.cell),
            nn.ReLU(),
            nn.Conv2d(config.coarse_channels, d, 1),
            nn.ReLU(),
        )
        self.fine = nn.Sequential(
            nn.Conv2d(c, f1, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2, ceil_mode=True),
            nn.Conv2d(f1, f2, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2, ceil_mode=True),
            nn.Conv2d(f2, f2, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveMaxPool2d(1),
            nn.Flatten(),
            nn.Linear(f2, d),
            nn.ReLU(),
        )
        self.top = nn.Sequential(
            nn.Conv2d(d, d, 1),
            nn.ReLU(),
            nn.AdaptiveMaxPool2d(1),
            nn.Flatten(),
            nn.Linear(d, config.num_classes),
        )
        extract_patches(torch.zeros(1, c, 1, 1), torch.zeros(1, 1, 2, dtype=torch.long), config.cell, config.patch)

    def coarse_features(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, D, h, w): coarse features of ``x`` (padded to whole cells)."""
        check_feature_map(x, "x", self.config.in_channels)
        cell = self.config.cell
        x = F.pad(x, (0, -x.shape[-1] % cell, 0, -x.shape[-2] % cell))  # (B, C, h*cell, w*cell)
        return self.coarse(x)  # (B, D, h, w)

    def forward_details(self, x: Tensor) -> DCNOutput:
        """(B, C, H, W) -> :class:`DCNOutput`: the whole network, with every intermediate result."""
        cfg = self.config
        coarse = self.coarse_features(x)  # (B, D, h, w)
        B, D, h, w = coarse.shape
        if cfg.k is None or cfg.k >= h * w:  # fine everywhere: no choice to make
            cells = torch.arange(h * w, device=x.device)
            locations = torch.stack([cells // w, cells % w], dim=-1).expand(B, h * w, 2)  # (B, h*w, 2)
            coarse_logits, saliency = None, None
        else:
            saliency = entropy_saliency(self.top, coarse)  # (B, 1, h, w)
            emit(self, saliency)
            locations = select_top_k(saliency, cfg.k)  # (B, k, 2)
            coarse_logits = self.top(coarse)  # (B, classes)
        k = locations.shape[1]
        patches = extract_patches(x, locations, cfg.cell, cfg.patch)  # (B, k, C, p, p)
        fine = self.fine(patches.flatten(0, 1)).view(B, k, D)  # (B, k, D)
        index = (locations[..., 0] * w + locations[..., 1])[:, None, :].expand(B, D, k)  # (B, D, k)
        refined = coarse.flatten(2).scatter(2, index, fine.transpose(1, 2)).view(B, D, h, w)  # (B, D, h, w)
        chosen_coarse = coarse.flatten(2).gather(2, index)  # (B, D, k)
        hint = (chosen_coarse - fine.detach().transpose(1, 2)).pow(2).mean()  # fine features are the targets
        return DCNOutput(self.top(refined), coarse_logits, saliency, locations, hint)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, classes): logits of the refined map."""
        return self.forward_details(x).logits

    def coarse_forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, classes): logits of the coarse path alone (no fine layers)."""
        return self.top(self.coarse_features(x))

    def loss(self, x: Tensor, labels: Tensor) -> tuple[Tensor, dict[str, float]]:
        """Training loss: refined cross-entropy + coarse cross-entropy + hint (weights in the config).

        Returns:
            The scalar loss and its parts as floats (``"refined"``, ``"coarse"``, ``"hint"``).
        """
        out = self.forward_details(x)
        refined = F.cross_entropy(out.logits, labels)
        coarse = F.cross_entropy(out.coarse_logits, labels) if out.coarse_logits is not None else refined.new_zeros(())
        total = refined + self.config.coarse_weight * coarse + self.config.hint_weight * out.hint
        return total, {"refined": refined.item(), "coarse": coarse.item(), "hint": out.hint.item()}
