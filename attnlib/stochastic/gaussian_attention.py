"""Gaussian attention: one 2-D Gaussian kernel, with predicted mean and covariance, as a spatial map.

Listed by Hassanin et al. (2024, arXiv:2204.07756) among the attention families that replace
the softmax over positions by a parametric density.  A network predicts five numbers per
image, the mean ``m = (m_x, m_y)`` in ``[-1, 1]^2`` and a covariance from two log standard
deviations and a correlation ``rho`` in ``(-1, 1)``,

    Sigma = [[s_x^2, rho s_x s_y], [rho s_x s_y, s_y^2]],

and the map over the ``H x W`` pixel centres ``u_ij`` (coordinates in ``[-1, 1]``, corners
included) is the normalised kernel

    a_ij = exp(-(u_ij - m)^T Sigma^-1 (u_ij - m) / 2) / sum_kl exp(...)               (on the simplex)

The glimpse of a feature map ``x`` ``(B, C, H, W)`` is ``sum_ij a_ij x_:ij`` ``(B, C)``.  Five
numbers instead of ``H W`` scores, and a smooth, differentiable location: the same idea as
DRAW's filterbank (Gregor et al., 2015, arXiv:1502.04623), which :mod:`attnlib.draw` provides
for a *grid* of axis-aligned, isotropic Gaussians; this module is the single kernel with a full
covariance (rotated, elongated blobs).  For ``rho = 0`` and ``s_x = s_y`` the map is the outer
product of two DRAW filter rows, which the tests check against :func:`attnlib.draw.filterbank`.

Recording: :class:`GaussianAttention` emits its map ``(B, 1, H, W)``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from attnlib._checks import check_feature_map, check_rank, shape_str
from attnlib.record import emit

__all__ = ["GaussianParams", "gaussian_params", "gaussian_attention_map", "GaussianAttention"]


class GaussianParams(NamedTuple):
    """A batch of 2-D Gaussians, each field ``(B,)``, in the ``[-1, 1]`` image coordinates."""

    mean_x: Tensor
    mean_y: Tensor
    std_x: Tensor
    std_y: Tensor
    rho: Tensor

    def as_tensor(self) -> Tensor:
        """``(B, 5)``: ``(m_x, m_y, s_x, s_y, rho)``."""
        return torch.stack(list(self), dim=-1)  # (B, 5)


def gaussian_params(raw: Tensor, min_std: float = 0.02) -> GaussianParams:
    """``(tanh m~_x, tanh m~_y, exp log s_x + min, exp log s_y + min, 0.95 tanh rho~)`` from ``raw`` ``(B, 5)``.

    ``rho`` stays within ``(-0.95, 0.95)`` and each standard deviation above ``min_std``, so the
    covariance stays well conditioned.
    """
    check_rank(raw, "raw", 2, "(B, 5)")
    if raw.shape[1] != 5:
        raise ValueError(f"raw must have shape (B, 5) = (m_x, m_y, log s_x, log s_y, rho); got {shape_str(raw.shape)}")
    mx, my, lsx, lsy, r = raw.unbind(-1)  # each (B,)
    return GaussianParams(
        torch.tanh(mx), torch.tanh(my), lsx.exp() + min_std, lsy.exp() + min_std, 0.95 * torch.tanh(r)
    )


def _grid(n: int, like: Tensor) -> Tensor:
    return torch.linspace(-1.0, 1.0, n, dtype=like.dtype, device=like.device) if n > 1 else like.new_zeros(1)


def gaussian_attention_map(params: GaussianParams, height: int, width: int) -> Tensor:
    """The normalised kernel ``a`` ``(B, 1, H, W)`` of the module docstring; each map sums to one."""
    if height < 1 or width < 1:
        raise ValueError(f"height and width must be positive; got {height} x {width}")
    ys, xs = _grid(height, params.mean_x), _grid(width, params.mean_x)  # (H,), (W,)
    dx = (xs[None, None, :] - params.mean_x[:, None, None]) / params.std_x[:, None, None]  # (B, 1, W)
    dy = (ys[None, :, None] - params.mean_y[:, None, None]) / params.std_y[:, None, None]  # (B, H, 1)
    rho = params.rho[:, None, None]  # (B, 1, 1)
    quad = (dx**2 - 2 * rho * dx * dy + dy**2) / (1 - rho**2)  # (B, H, W): (u - m)^T Sigma^-1 (u - m)
    a = torch.softmax(-0.5 * quad.flatten(1), dim=1)  # (B, H W), exp(...) / sum without underflow
    return a.view(-1, 1, height, width)  # (B, 1, H, W)


class GaussianAttention(nn.Module):
    """Predict a Gaussian from a feature map and read the map's glimpse through it.

    Shapes:
        ``x`` ``(B, C, H, W)`` -> glimpse ``(B, C)``; the map ``(B, 1, H, W)`` is emitted and
        kept as ``last_map``, the parameters ``(B, 5)`` as ``last_params``.

    The five raw numbers come from a small network on the map itself (a 3x3 convolution,
    ReLU, a linear layer on the flattened result), or from a given ``state`` ``(B, state_size)``
    (a recurrent controller, as in DRAW), when ``state_size`` is set.

    Args:
        channels: ``C``.
        height, width: ``H`` and ``W`` (the predictor's linear layer reads every position).
        hidden_channels: channels of the predictor's convolution.
        state_size: predict from a state vector instead of from ``x``.
        initial_std: standard deviation of the initial, centred kernel (in ``[-1, 1]`` units).

    Raises:
        ValueError: on a call, for a map of the wrong shape or dtype.
    """

    def __init__(
        self,
        channels: int,
        height: int,
        width: int,
        hidden_channels: int = 8,
        state_size: int | None = None,
        initial_std: float = 0.5,
    ) -> None:
        super().__init__()
        self.channels, self.height, self.width, self.state_size = channels, height, width, state_size
        if state_size is None:
            self.features: nn.Module = nn.Sequential(
                nn.Conv2d(channels, hidden_channels, 3, padding=1), nn.ReLU(), nn.Flatten()
            )
            in_features = hidden_channels * height * width
        else:
            self.features = nn.Identity()
            in_features = state_size
        self.head = nn.Linear(in_features, 5)
        with torch.no_grad():
            self.head.weight.mul_(0.1)
            log_std = torch.log(torch.tensor(max(initial_std - 0.02, 1e-3))).item()
            self.head.bias.copy_(torch.tensor([0.0, 0.0, log_std, log_std, 0.0]))
        self.last_map = torch.zeros(0)
        self.last_params = torch.zeros(0)

    def forward(self, x: Tensor, state: Tensor | None = None) -> Tensor:
        check_feature_map(x, "x", self.channels)
        if x.shape[2:] != (self.height, self.width):
            raise ValueError(
                f"x must have shape (B, {self.channels}, {self.height}, {self.width}); got {shape_str(x.shape)}"
            )
        if self.state_size is not None:
            if state is None:
                raise ValueError(f"this module predicts from a state (B, {self.state_size}); got state=None")
            check_rank(state, "state", 2, f"(B, {self.state_size})")
            raw = self.head(state)  # (B, 5)
        else:
            raw = self.head(self.features(x))  # (B, hidden H W) -> (B, 5)
        params = gaussian_params(raw)
        a = gaussian_attention_map(params, self.height, self.width)  # (B, 1, H, W)
        emit(self, a)
        self.last_map, self.last_params = a.detach(), params.as_tensor().detach()
        return (a * x).sum(dim=(2, 3))  # (B, 1, H, W) * (B, C, H, W) -> (B, C)
