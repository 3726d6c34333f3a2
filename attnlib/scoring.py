"""Scoring functions as modules: how much should query ``q`` look at key ``k``?

Each module maps queries ``(..., L, Eq)`` and keys ``(..., S, Ek)`` to scores
``(..., L, S)``, so they are interchangeable inside :class:`attnlib.attention_pooling.AttentionPooling` or a
sequence-to-sequence decoder.  The maths is in :mod:`attnlib.functional`; these classes only
own the parameters.

===================  =============================  =================  ===========================
module               score                          parameters         paper
===================  =============================  =================  ===========================
``DotScore``         ``q · k``                      none               Luong et al. 2015 ("dot")
``ScaledDotScore``   ``q · k / sqrt(E)``            none               Vaswani et al. 2017
``AdditiveScore``    ``v · tanh(W_q q + W_k k)``    ``Hd (Eq+Ek+1)``   Bahdanau et al. 2015
``BilinearScore``    ``q^T W k``                    ``Eq Ek``          Luong et al. 2015 ("general")
``ConcatScore``      ``v · tanh(W [q; k])``         ``Hd (Eq+Ek+1)``   Luong et al. 2015 ("concat")
===================  =============================  =================  ===========================

Parameters are initialised like :class:`torch.nn.Linear` (uniform in ``±1/sqrt(fan_in)``).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from . import functional as AF

__all__ = ["DotScore", "ScaledDotScore", "AdditiveScore", "BilinearScore", "ConcatScore"]


class DotScore(nn.Module):
    """``score(q, k) = q · k``; queries and keys need the same size ``E``."""

    def forward(self, q: Tensor, k: Tensor) -> Tensor:
        """``q (..., L, E)``, ``k (..., S, E)`` -> scores ``(..., L, S)``."""
        return AF.dot_score(q, k)


class ScaledDotScore(nn.Module):
    """``score(q, k) = q · k * scale``, by default ``scale = 1 / sqrt(E)``."""

    def __init__(self, scale: Optional[float] = None) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, q: Tensor, k: Tensor) -> Tensor:
        """``q (..., L, E)``, ``k (..., S, E)`` -> scores ``(..., L, S)``."""
        return AF.scaled_dot_score(q, k, self.scale)

    def extra_repr(self) -> str:
        return f"scale={self.scale}" if self.scale is not None else "scale=1/sqrt(E)"


class AdditiveScore(nn.Module):
    """Bahdanau's additive score ``v · tanh(W_q q + W_k k)``, a one-hidden-layer MLP.

    Args:
        query_dim: ``Eq``, e.g. the decoder state size.
        key_dim: ``Ek``, e.g. the size of an encoder annotation.
        hidden_dim: ``Hd``, the MLP's width (the paper's ``n'``).
    """

    def __init__(self, query_dim: int, key_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.w_q = nn.Linear(query_dim, hidden_dim, bias=False)  # W_a
        self.w_k = nn.Linear(key_dim, hidden_dim, bias=False)  # U_a
        self.v = nn.Linear(hidden_dim, 1, bias=False)  # v_a

    def forward(self, q: Tensor, k: Tensor) -> Tensor:
        """``q (..., L, Eq)``, ``k (..., S, Ek)`` -> scores ``(..., L, S)``."""
        return AF.additive_score(q, k, self.w_q.weight, self.w_k.weight, self.v.weight[0])

    def project_keys(self, k: Tensor) -> Tensor:
        """``W_k k``: ``(..., S, Ek)`` -> ``(..., S, Hd)``.  A decoder that scores many queries
        against the same keys computes this once (Bahdanau et al. note the saving)."""
        return self.w_k(k)

    def score_projected(self, q: Tensor, k_projected: Tensor) -> Tensor:
        """The score from keys already projected by :meth:`project_keys`:
        ``q (..., L, Eq)``, ``k_projected (..., S, Hd)`` -> ``(..., L, S)``; equal to ``forward(q, k)``."""
        features = torch.tanh(self.w_q(q).unsqueeze(-2) + k_projected.unsqueeze(-3))  # (..., L, S, Hd)
        return features @ self.v.weight[0]  # (..., L, S)


class BilinearScore(nn.Module):
    """Luong's "general" score ``q^T W k``.

    Args:
        query_dim: ``Eq``.
        key_dim: ``Ek``.
    """

    def __init__(self, query_dim: int, key_dim: int) -> None:
        super().__init__()
        # Stored as a Linear(Ek -> Eq) so that W k is one matmul and the init is Linear's.
        self.w = nn.Linear(key_dim, query_dim, bias=False)  # weight: (Eq, Ek)

    def forward(self, q: Tensor, k: Tensor) -> Tensor:
        """``q (..., L, Eq)``, ``k (..., S, Ek)`` -> scores ``(..., L, S)``."""
        return AF.bilinear_score(q, k, self.w.weight)


class ConcatScore(nn.Module):
    """Luong's "concat" score ``v · tanh(W [q; k])``.

    The additive score with ``W`` split in two: see :func:`attnlib.functional.concat_score`.

    Args:
        query_dim: ``Eq``.
        key_dim: ``Ek``.
        hidden_dim: ``Hd``.
    """

    def __init__(self, query_dim: int, key_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.w = nn.Linear(query_dim + key_dim, hidden_dim, bias=False)  # W_a: (Hd, Eq + Ek)
        self.v = nn.Linear(hidden_dim, 1, bias=False)  # v_a

    def forward(self, q: Tensor, k: Tensor) -> Tensor:
        """``q (..., L, Eq)``, ``k (..., S, Ek)`` -> scores ``(..., L, S)``."""
        return AF.concat_score(q, k, self.w.weight, self.v.weight[0])
