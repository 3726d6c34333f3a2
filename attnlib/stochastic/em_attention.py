"""Expectation-maximisation attention (EMANet): K bases instead of N x N weights.

Li, Zhong, Wu, Yang, Lin and Liu, *Expectation-Maximization Attention Networks for Semantic
Segmentation*, ICCV 2019 (arXiv:1907.13426).  The non-local block lets each of the ``N = H W``
positions of a feature map attend to every other one, an ``N x N`` map.  EMANet instead finds
``K << N`` bases ``mu`` (``(C, K)``) by a few iterations of expectation-maximisation and
reconstructs every position from them.  With ``X`` the ``(N, C)`` features of one image:

    E-step:  Z = softmax(X mu)            (N, K), a softmax over the K bases
    M-step:  mu_k = sum_n Z_nk x_n / sum_n Z_nk,  then mu_k <- mu_k / ||mu_k||
    output:  X~ = Z mu^T                  (N, C), the reconstruction

These are the EM steps of a mixture of von Mises-Fisher-like components with unit mean
directions and equal weights (Dempster, Laird and Rubin, 1977): the log-likelihood
``sum_n log sum_k exp(x_n . mu_k)`` (:func:`em_objective`) never decreases over the iterations.
The ``T`` iterations run without gradient, as in the authors' code, where the reconstruction
``Z mu^T`` is built from their results, so no gradient flows through the EM part at all (the
block's input still gets one through the residual path).  ``grad_through_last_e_step=True``
(our option) recomputes the last E-step with gradient, so ``Z`` and the layers before it learn
from the task; the bases ``mu`` stay fixed for the gradient either way.  The initial
bases ``mu^0`` are not learned by back-propagation but kept as a moving average over training
batches: ``mu^0 <- 0.9 mu^0 + 0.1 mean_batch(mu^T)``.  The authors' code
(github.com/XiaLiPKU/EMANet, ``train.py``, ``Session.train_batch``) leaves the average as it
is, so the columns of ``mu^0`` can be shorter than one (an average of unit vectors); only the
first E-step sees them, and it is softer for it, since every M-step renormalises.  That is
the default here; ``normalize_initial_bases=True`` (the course's earlier variant) projects
the average back onto the unit sphere, so every E-step, the first included, scores features
against unit bases.

The block (:class:`EMAttention`, the paper's EM attention unit) is a drop-in ``(B, C, H, W)`` module
like :class:`attnlib.vision.non_local.NonLocalBlock`: ``1x1 conv -> EM -> ReLU -> 1x1 conv + BN ->
+ input -> ReLU``.  Its cost is ``O(N K C T)`` against the non-local block's ``O(N^2 C)``.
Recording: emits the responsibilities ``Z`` as ``(B, K, H, W)``: the map of what each base gathers.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnlib._checks import check_feature_map, check_floating, check_rank, shape_str
from attnlib.record import emit

__all__ = ["EMResult", "em_iterations", "em_objective", "EMAttention", "EMAU"]


class EMResult(NamedTuple):
    """What :func:`em_iterations` returns."""

    bases: Tensor  #: ``(B, C, K)``, unit columns: the bases after the last M-step
    responsibilities: Tensor  #: ``(B, N, K)``: the last E-step's ``Z``, each row on the simplex
    objectives: Tensor  #: ``(B, T + 1)``: :func:`em_objective` before the first and after each iteration


def em_objective(x: Tensor, bases: Tensor) -> Tensor:
    """``sum_n log sum_k exp(x_n . mu_k)``: the log-likelihood that the E and M steps increase.

    Args:
        x: ``(B, C, N)`` features.
        bases: ``(B, C, K)`` (or ``(1, C, K)``).

    Returns:
        ``(B,)``.
    """
    scores = x.transpose(1, 2) @ bases  # (B, N, C) (B, C, K) -> (B, N, K)
    return torch.logsumexp(scores, dim=2).sum(dim=1)  # (B,)


def em_iterations(x: Tensor, bases: Tensor, iterations: int = 3) -> EMResult:
    """``T`` EM iterations from ``bases``; differentiable, so wrap it in ``torch.no_grad`` to skip the graph.

    Args:
        x: ``(B, C, N)`` features.
        bases: ``(B, C, K)`` or ``(1, C, K)`` initial bases (expanded over the batch).
        iterations: ``T`` (at least 1).

    Returns:
        An :class:`EMResult`.

    Raises:
        ValueError: if the shapes do not match or ``iterations < 1``.
    """
    check_rank(x, "x", 3, "(B, C, N)")
    check_rank(bases, "bases", 3, "(B, C, K)")
    check_floating(x, "x")
    if bases.shape[1] != x.shape[1] or bases.shape[0] not in (1, x.shape[0]):
        raise ValueError(
            f"bases must have shape (B or 1, C, K) with C = {x.shape[1]} and B = {x.shape[0]}; "
            f"got {shape_str(bases.shape)}"
        )
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1; got {iterations}")
    mu = bases.expand(x.shape[0], -1, -1)  # (B, C, K)
    objectives = [em_objective(x, mu)]
    z = x.new_zeros(0)
    for _ in range(iterations):
        z = torch.softmax(x.transpose(1, 2) @ mu, dim=2)  # E-step: (B, N, C) (B, C, K) -> (B, N, K)
        z_norm = z / (1e-6 + z.sum(dim=1, keepdim=True))  # (B, N, K), columns sum to one
        mu = F.normalize(x @ z_norm, dim=1)  # M-step: (B, C, N) (B, N, K) -> (B, C, K), unit columns
        objectives.append(em_objective(x, mu))
    return EMResult(mu, z, torch.stack(objectives, dim=1))  # objectives (B, T + 1)


class EMAttention(nn.Module):
    """The EM attention unit (EMAU), a residual drop-in ``(B, C, H, W) -> (B, C, H, W)`` block.

    Shapes:
        ``x`` ``(B, C, H, W)``; internally ``X`` ``(B, C', N)``, ``N = H W``; bases ``(1, C', K)``;
        responsibilities ``Z`` ``(B, N, K)``, emitted as ``(B, K, H, W)``.

    Args:
        channels: ``C``.
        num_bases: ``K`` (64 in the paper).
        iterations: ``T`` EM iterations in training (3 in the paper).
        inner_channels: ``C'`` of the EM step; default ``C``.
        momentum: weight of the old bases in the moving average (0.9 in the paper).
        zero_init: start the output batch norm's scale at zero, so the block starts as
            ``ReLU(x)`` (our choice, like the zero-initialised non-local block).
        grad_through_last_e_step: recompute the last E-step with gradient (module docstring);
            ``False`` (default) is the authors' code.
        normalize_initial_bases: L2-normalise ``mu^0`` after each moving-average update (our
            variant); ``False`` (default) is the authors' code, which does not.

    Attributes:
        mu: buffer ``(1, C', K)``, the initial bases ``mu^0`` (unit columns at construction; after
            moving-average updates, norms at most one unless ``normalize_initial_bases``).
        last_bases: ``(B, C', K)``, the bases after the last call's iterations (detached).

    Raises:
        ValueError: for non-positive sizes or a momentum outside ``[0, 1]``; on a call, if ``x`` is
            not a floating-point ``(B, C, H, W)`` map with ``C`` channels.
    """

    mu: Tensor

    def __init__(
        self,
        channels: int,
        num_bases: int = 64,
        iterations: int = 3,
        inner_channels: int | None = None,
        momentum: float = 0.9,
        zero_init: bool = False,
        grad_through_last_e_step: bool = False,
        normalize_initial_bases: bool = False,
    ) -> None:
        super().__init__()
        inner = channels if inner_channels is None else inner_channels
        if min(channels, num_bases, iterations, inner) < 1:
            raise ValueError(
                "channels, num_bases, iterations and inner_channels must be positive; got "
                f"channels={channels}, num_bases={num_bases}, iterations={iterations}, inner_channels={inner}"
            )
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must be in [0, 1]; got {momentum}")
        self.channels, self.num_bases, self.iterations, self.momentum = channels, num_bases, iterations, momentum
        self.grad_through_last_e_step = grad_through_last_e_step
        self.normalize_initial_bases = normalize_initial_bases
        mu = torch.randn(1, inner, num_bases) * math.sqrt(2.0 / num_bases)  # (1, C', K), the authors' init
        self.register_buffer("mu", F.normalize(mu, dim=1))
        self.conv_in = nn.Conv2d(channels, inner, 1)
        self.conv_out = nn.Conv2d(inner, channels, 1, bias=False)
        self.norm = nn.BatchNorm2d(channels)
        if zero_init:
            nn.init.zeros_(self.norm.weight)
        self.last_bases = self.mu.clone()

    def reconstruct(self, x: Tensor, iterations: int | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """The EM part alone: ``(Z mu^T, mu^T, Z)`` for ``x`` ``(B, C', N)``.

        Returns:
            The reconstruction ``(B, C', N)``, the bases ``(B, C', K)`` (without gradient) and the
            responsibilities ``(B, N, K)`` (with gradient only if ``grad_through_last_e_step``).
        """
        with torch.no_grad():
            result = em_iterations(x, self.mu, self.iterations if iterations is None else iterations)
        mu, z = result.bases, result.responsibilities  # (B, C', K), (B, N, K)
        if self.grad_through_last_e_step:
            z = torch.softmax(x.transpose(1, 2) @ mu, dim=2)  # (B, N, C') (B, C', K) -> (B, N, K)
        return mu @ z.transpose(1, 2), mu, z  # (B, C', K) (B, K, N) -> (B, C', N)

    @torch.no_grad()
    def update_bases(self, bases: Tensor) -> None:
        """The moving average ``mu^0 <- m mu^0 + (1 - m) mean_b(bases)`` (L2-normalised only if
        ``normalize_initial_bases``).

        Args:
            bases: ``(B, C', K)`` from an EM run.
        """
        check_rank(bases, "bases", 3, "(B, C', K)")
        if bases.shape[1:] != self.mu.shape[1:]:
            raise ValueError(
                f"bases must have shape (B, {self.mu.shape[1]}, {self.mu.shape[2]}); got {shape_str(bases.shape)}"
            )
        mean = bases.mean(dim=0, keepdim=True)  # (1, C', K)
        average = self.momentum * self.mu + (1 - self.momentum) * mean  # (1, C', K)
        self.mu.copy_(F.normalize(average, dim=1) if self.normalize_initial_bases else average)

    def forward(self, x: Tensor) -> Tensor:
        check_feature_map(x, "x", self.channels)
        b, _, h, w = x.shape
        features = self.conv_in(x).flatten(2)  # (B, C', N)
        recon, mu, z = self.reconstruct(features)  # (B, C', N), (B, C', K), (B, N, K)
        emit(self, z.detach().transpose(1, 2).reshape(b, self.num_bases, h, w))  # (B, K, H, W)
        self.last_bases = mu
        if self.training:
            self.update_bases(mu)
        y = F.relu(recon.reshape(b, -1, h, w))  # (B, C', H, W)
        return F.relu(x + self.norm(self.conv_out(y)))  # (B, C, H, W)


EMAU = EMAttention
