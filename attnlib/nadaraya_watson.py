"""Nadaraya-Watson kernel regression: attention pooling before deep learning.

Nadaraya (1964) and Watson (1964) estimate ``y`` at a query ``x`` as a weighted average of
the training targets, weighted by how close each training input is::

    f(x) = sum_i  K((x - x_i) / h) / sum_j K((x - x_j) / h)  *  y_i

The weights are a softmax of ``log K((x - x_i) / h)``, so this is attention pooling with the
query ``x``, the keys ``x_i``, the values ``y_i`` and the score ``log K``.  For the
Gaussian kernel the score is ``-||x - x_i||^2 / (2 h^2)``, a (negative, scaled) squared
distance.  The bandwidth ``h`` plays the role of a temperature: small ``h`` copies the
nearest neighbour, large ``h`` returns the mean of all targets.

Kernels here take the *squared* scaled distance ``u2 = ||x - x_i||^2 / h^2`` and return
``log K``, with ``-inf`` outside a kernel's support (so the masked softmax of
:mod:`attnlib.functional` does the normalising and a query with no training point in range
gets zero weights rather than NaN).
"""

from __future__ import annotations

import math
from typing import Callable, Optional, Union

import torch
from torch import Tensor, nn

from ._checks import check_floating, check_tensor, shape_str
from .functional import masked_softmax
from .record import emit

__all__ = [
    "gaussian_log_kernel",
    "boxcar_log_kernel",
    "epanechnikov_log_kernel",
    "leave_one_out_mask",
    "nadaraya_watson",
    "NadarayaWatson",
]

LogKernel = Callable[[Tensor], Tensor]


def gaussian_log_kernel(u2: Tensor) -> Tensor:
    """``log K`` of the Gaussian kernel ``exp(-u^2 / 2)`` (constant factors cancel)."""
    return -0.5 * u2


def boxcar_log_kernel(u2: Tensor) -> Tensor:
    """``log K`` of the box kernel ``1[|u| <= 1]``: every point within ``h`` counts equally."""
    return torch.where(u2 <= 1.0, torch.zeros_like(u2), torch.full_like(u2, float("-inf")))


def epanechnikov_log_kernel(u2: Tensor) -> Tensor:
    """``log K`` of the Epanechnikov kernel ``max(0, 1 - u^2)``."""
    inside = u2 < 1.0
    safe = torch.where(inside, 1.0 - u2, torch.ones_like(u2))  # avoid log(<=0) on the dead branch
    return torch.where(inside, torch.log(safe), torch.full_like(u2, float("-inf")))


def leave_one_out_mask(n: int, device: Optional[torch.device] = None) -> Tensor:
    """``(n, n)`` bool mask, ``False`` on the diagonal: point ``i`` may not attend to itself.

    Fitting a bandwidth on the training points themselves without it lets every point
    copy its own target, and the loss is minimised by ``h -> 0``.
    """
    return ~torch.eye(n, dtype=torch.bool, device=device)


def _as_points(x: Tensor, name: str) -> Tensor:
    check_tensor(x, name)
    check_floating(x, name)
    if x.dim() == 1:
        return x[:, None]  # (N, 1)
    if x.dim() == 2:
        return x
    raise ValueError(f"{name} must have shape (N,) or (N, D); got {shape_str(x.shape)}")


def nadaraya_watson(
    x_query: Tensor,
    x_train: Tensor,
    y_train: Tensor,
    bandwidth: Union[float, Tensor],
    *,
    log_kernel: LogKernel = gaussian_log_kernel,
    mask: Optional[Tensor] = None,
) -> tuple[Tensor, Tensor]:
    """Nadaraya-Watson estimate at each query.

    Args:
        x_query: ``(M,)`` or ``(M, D)`` query inputs.
        x_train: ``(N,)`` or ``(N, D)`` training inputs (the keys).
        y_train: ``(N,)`` or ``(N, P)`` training targets (the values).
        bandwidth: ``h > 0``, a float or a 0-d tensor (differentiable).
        log_kernel: maps squared scaled distances to ``log K``; see the module docstring.
        mask: ``(M, N)`` boolean, ``True`` = may use this training point, e.g.
            :func:`leave_one_out_mask`.

    Returns:
        ``(y_hat, weights)``: ``y_hat`` ``(M,)`` or ``(M, P)`` like ``y_train``, and
        ``weights`` ``(M, N)``, each row summing to 1 (or all zero when no training point
        lies in the kernel's support).

    Raises:
        ValueError: inputs of the wrong rank, mismatched ``D`` or ``N``, ``h <= 0``.
    """
    xq = _as_points(x_query, "x_query")  # (M, D)
    xt = _as_points(x_train, "x_train")  # (N, D)
    check_tensor(y_train, "y_train")
    if xq.shape[1] != xt.shape[1]:
        raise ValueError(
            f"x_query and x_train must have the same number of features D: "
            f"x_query {shape_str(x_query.shape)}, x_train {shape_str(x_train.shape)}"
        )
    if y_train.dim() not in (1, 2) or y_train.shape[0] != xt.shape[0]:
        raise ValueError(
            f"y_train must have shape (N,) or (N, P) with N = {xt.shape[0]} training points; "
            f"got {shape_str(y_train.shape)}"
        )
    h = torch.as_tensor(bandwidth, dtype=xq.dtype, device=xq.device)
    if h.dim() != 0 or not bool(h > 0):
        raise ValueError(f"bandwidth must be a positive scalar; got {bandwidth}")
    sq_dist = ((xq[:, None, :] - xt[None, :, :]) ** 2).sum(-1)  # (M, N)
    scores = log_kernel(sq_dist / h**2)  # (M, N): log K
    weights = masked_softmax(scores, mask)  # (M, N)
    y_hat = weights @ y_train.to(weights.dtype)  # (M,) or (M, P)
    return y_hat, weights


class NadarayaWatson(nn.Module):
    """Nadaraya-Watson regression with a fixed or learnable bandwidth.

    The bandwidth is stored as ``log h`` so that gradient steps keep it positive.  Weights
    ``(M, N)`` are emitted to :mod:`attnlib.record` on every call.

    Args:
        bandwidth: initial ``h > 0``.
        learnable: make ``h`` a parameter.
        log_kernel: see :func:`nadaraya_watson`.
    """

    def __init__(
        self,
        bandwidth: float = 1.0,
        learnable: bool = True,
        log_kernel: LogKernel = gaussian_log_kernel,
    ) -> None:
        super().__init__()
        if not bandwidth > 0:
            raise ValueError(f"bandwidth must be > 0; got {bandwidth}")
        log_h = torch.tensor(math.log(bandwidth))
        if learnable:
            self.log_bandwidth = nn.Parameter(log_h)
        else:
            self.register_buffer("log_bandwidth", log_h)
        self.log_kernel = log_kernel

    @property
    def bandwidth(self) -> Tensor:
        """``h``, a 0-d tensor."""
        return self.log_bandwidth.exp()

    def forward(
        self,
        x_query: Tensor,
        x_train: Tensor,
        y_train: Tensor,
        mask: Optional[Tensor] = None,
        *,
        return_weights: bool = False,
    ) -> Union[Tensor, tuple[Tensor, Tensor]]:
        """Estimate ``y`` at ``x_query``; shapes as in :func:`nadaraya_watson`."""
        y_hat, weights = nadaraya_watson(
            x_query, x_train, y_train, self.bandwidth.to(x_query.dtype), log_kernel=self.log_kernel, mask=mask
        )
        emit(self, weights)
        return (y_hat, weights) if return_weights else y_hat

    def extra_repr(self) -> str:
        kind = "learnable" if isinstance(self.log_bandwidth, nn.Parameter) else "fixed"
        kernel = getattr(self.log_kernel, "__name__", self.log_kernel)
        return f"bandwidth={self.bandwidth.item():.4g} ({kind}), kernel={kernel}"
