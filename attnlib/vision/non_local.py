"""The non-local block: self-attention over the positions of a feature map.

Wang, Girshick, Gupta & He, "Non-local Neural Networks", CVPR 2018 (arXiv:1711.07971).

A convolution mixes a small neighbourhood; a non-local operation lets every position ``i``
of ``x`` (``(B, C, H, W)``, ``N = H W`` positions) read from every position ``j``:

    y_i = (1 / C(x)) sum_j f(x_i, x_j) g(x_j),        z_i = W_z y_i + x_i.

With 1x1 convolutions ``theta``, ``phi`` and ``g`` down to ``C' = C / 2`` channels:

* **embedded Gaussian** (the default): ``f = exp(theta(x_i)^T phi(x_j))`` normalised over
  ``j``, i.e. ``softmax_j(theta_i^T phi_j)``, exactly scaled-dot-product self-attention
  without the scaling, with ``theta`` as queries, ``phi`` as keys and ``g`` as values;
* **dot product**: ``f = theta_i^T phi_j`` divided by ``N`` (no softmax; the weights can
  be negative and do not sum to one).

``W_z`` is a 1x1 convolution back to ``C`` channels. We initialise it to zero, so the
block starts as the identity and can be inserted into a trained network without changing
it (the paper achieves the same by zero-initialising a batch normalisation after ``W_z``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from attnlib._checks import check_feature_map
from attnlib.record import emit

__all__ = ["NonLocalBlock", "NONLOCAL_MODES"]

NONLOCAL_MODES: tuple[str, ...] = ("embedded_gaussian", "dot_product")


class NonLocalBlock(nn.Module):
    """Non-local block (Wang et al., 2018), residual and shape-preserving.

    Shapes:
        ``x`` ``(B, C, H, W)`` -> ``x + W_z(f g(x))`` ``(B, C, H, W)``, with the attention ``f``
        of shape ``(B, N, N)``, ``N = H W`` (:meth:`attention` computes it): row ``i`` (a query
        position, row-major ``i = y W + x``) holds the weights over all positions ``j``. In the
        embedded Gaussian mode each row sums to one. Emits ``f`` to :mod:`attnlib.record` on
        every call.

    Args:
        channels: ``C``.
        inner_channels: ``C'`` of ``theta``, ``phi`` and ``g``; default ``max(C // 2, 1)``.
        mode: ``"embedded_gaussian"`` (default) or ``"dot_product"``.
        zero_init: initialise ``W_z`` to zero so the block starts as the identity.

    Raises:
        ValueError: for a non-positive size or an unknown ``mode``; on a call, if ``x`` is not
            4-D, does not have ``C`` channels, or is not floating point (an integer or uint8
            image: convert it with ``.float()``).
    """

    def __init__(
        self,
        channels: int,
        inner_channels: int | None = None,
        mode: str = "embedded_gaussian",
        zero_init: bool = True,
    ) -> None:
        super().__init__()
        inner = max(channels // 2, 1) if inner_channels is None else inner_channels
        if channels < 1 or inner < 1:
            raise ValueError(f"channels and inner_channels must be positive; got channels={channels}, inner={inner}")
        if mode not in NONLOCAL_MODES:
            raise ValueError(f"mode must be one of {NONLOCAL_MODES}; got {mode!r}")
        self.channels, self.inner_channels, self.mode = channels, inner, mode
        self.theta = nn.Conv2d(channels, inner, 1)
        self.phi = nn.Conv2d(channels, inner, 1)
        self.g = nn.Conv2d(channels, inner, 1)
        self.w_z = nn.Conv2d(inner, channels, 1)
        if zero_init:
            nn.init.zeros_(self.w_z.weight)
            if self.w_z.bias is not None:
                nn.init.zeros_(self.w_z.bias)

    def attention(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, N, N), ``N = H W``: the pairwise weights ``f`` of ``x``."""
        check_feature_map(x, "x", self.channels)
        B, _, H, W = x.shape
        q = self.theta(x).flatten(2).transpose(1, 2)  # (B, N, C')
        k = self.phi(x).flatten(2)  # (B, C', N)
        scores = q @ k  # (B, N, N)
        if self.mode == "embedded_gaussian":
            return torch.softmax(scores, dim=-1)  # (B, N, N), rows sum to one
        return scores / (H * W)  # (B, N, N)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, C, H, W): ``x + W_z(f g(x))``, every position reading from all the others."""
        f = self.attention(x)  # (B, N, N)
        emit(self, f)
        B, _, H, W = x.shape
        v = self.g(x).flatten(2).transpose(1, 2)  # (B, N, C')
        y = (f @ v).transpose(1, 2).reshape(B, self.inner_channels, H, W)  # (B, C', H, W)
        return x + self.w_z(y)  # (B, C, H, W)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, inner_channels={self.inner_channels}, mode={self.mode!r}"
