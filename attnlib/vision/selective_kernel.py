"""Selective Kernel convolution: each channel chooses its receptive field by attention.

Li, Wang, Hu & Yang, "Selective Kernel Networks", CVPR 2019 (arXiv:1903.06586).

An SK convolution runs ``M`` branches over the same input ``x`` (``(B, C, H, W)``) with
different receptive fields, then lets each channel pick a soft mixture of them:

* **split**: branch ``m`` is a grouped 3x3 convolution with dilation ``m`` (so the
  second branch sees a 5x5 window, as the paper does to replace its 5x5 kernel), followed
  by batch normalisation and ReLU: ``U_m`` of shape ``(B, C, H, W)``;
* **fuse**: ``U = sum_m U_m``; global average pooling gives ``s`` (``(B, C)``) and a
  fully connected layer with batch normalisation and ReLU gives ``z = relu(bn(W_z s))``
  of size ``d = max(C / r, L)`` (``r = 16``, ``L = 32`` in the paper);
* **select**: one linear map per branch gives a score per channel, ``A_m z``, and a softmax
  *across the branches* turns the scores into weights ``a_{m,c}`` with
  ``sum_m a_{m,c} = 1``; the output is ``V_c = sum_m a_{m,c} U_{m,c}``.

With two branches the softmax is a sigmoid of the score difference: each channel slides
between the small and the large receptive field. Unlike the gating modules (SE, CBAM),
an SK convolution is itself a convolution layer: as a drop-in after a stage it adds depth.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from attnlib._checks import check_feature_map
from attnlib.record import emit

__all__ = ["SelectiveKernel", "SK"]


class SelectiveKernel(nn.Module):
    """Selective Kernel convolution (Li et al., 2019), shape-preserving.

    Shapes:
        ``x`` ``(B, C, H, W)`` -> ``V = sum_m a_m * U_m`` ``(B, C, H, W)``, from the branch
        outputs ``U`` ``(B, M, C, H, W)`` and the branch weights ``a`` ``(B, M, C, 1, 1)``, a
        softmax over the ``M`` axis, so they sum to one for each channel (:meth:`branch_weights`
        returns both). Emits ``a`` to :mod:`attnlib.record` on every call.

    Args:
        channels: ``C``, input and output channels.
        branches: ``M``; branch ``m`` (counting from 1) is a 3x3 convolution with
            dilation ``m``, i.e. a ``(2m + 1) x (2m + 1)`` receptive field.
        groups: groups of the branch convolutions (32 in the paper, as in ResNeXt);
            ``C`` must be divisible by it.
        reduction: ``r`` in ``d = max(C / r, min_hidden)``.
        min_hidden: ``L``, the smallest size of ``z`` (32 in the paper).

    Raises:
        ValueError: for a non-positive size, or ``channels`` not divisible by ``groups``; on a
            call, if ``x`` is not 4-D, does not have ``C`` channels, or is not floating point
            (an integer or uint8 image: convert it with ``.float()``).

    Note:
        The fuse step applies batch normalisation to a ``(B, d)`` vector, which, like any
        batch normalisation of a vector, needs more than one example per batch in training.
    """

    def __init__(
        self,
        channels: int,
        branches: int = 2,
        groups: int = 32,
        reduction: int = 16,
        min_hidden: int = 32,
    ) -> None:
        super().__init__()
        if min(channels, branches, groups, reduction, min_hidden) < 1:
            raise ValueError(
                f"channels, branches, groups, reduction and min_hidden must be positive; got channels={channels}, "
                f"branches={branches}, groups={groups}, reduction={reduction}, min_hidden={min_hidden}"
            )
        if channels % groups:
            raise ValueError(
                f"channels must be divisible by groups (grouped convolutions); got channels={channels}, groups={groups}"
            )
        self.channels = channels
        self.num_branches = branches
        self.hidden = max(channels // reduction, min_hidden)
        self.branches = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(channels, channels, 3, padding=m, dilation=m, groups=groups, bias=False),
                nn.BatchNorm2d(channels),
                nn.ReLU(inplace=True),
            )
            for m in range(1, branches + 1)
        )
        self.fuse = nn.Sequential(nn.Linear(channels, self.hidden, bias=False), nn.BatchNorm1d(self.hidden), nn.ReLU())
        self.select = nn.Linear(self.hidden, branches * channels)  # the M maps A_m, stacked

    def branch_weights(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(B, C, H, W) -> ``(U, a)``: branch outputs (B, M, C, H, W), their weights (B, M, C, 1, 1)."""
        check_feature_map(x, "x", self.channels)
        B, C = x.shape[:2]
        M = self.num_branches
        u = torch.stack([branch(x) for branch in self.branches], dim=1)  # (B, M, C, H, W)
        s = u.sum(dim=1).mean(dim=(2, 3))  # (B, C): fuse by sum, then global average pool
        z = self.fuse(s)  # (B, d)
        scores = self.select(z).view(B, M, C)  # (B, M, C): A_m z for each branch
        a = torch.softmax(scores, dim=1).view(B, M, C, 1, 1)  # (B, M, C, 1, 1), sums to 1 over M
        return u, a

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, C, H, W): ``V = sum_m a_m * U_m``, the branches mixed channel by channel."""
        u, a = self.branch_weights(x)  # (B, M, C, H, W), (B, M, C, 1, 1)
        emit(self, a)
        return (a * u).sum(dim=1)  # (B, C, H, W)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, branches={self.num_branches}, hidden={self.hidden}"


SK = SelectiveKernel
"""The paper's short name for :class:`SelectiveKernel` (Li et al. 2019, SKNet)."""
