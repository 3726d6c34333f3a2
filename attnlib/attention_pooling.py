"""Attention pooling: a weighted average of values, weighted by query-key scores.

For queries ``q``, keys ``k`` and values ``v``::

    weights = masked_softmax(score(q, k), mask)      # (B, L, S)
    output  = weights @ v                            # (B, L, Ev)

Every mechanism in the first half of the course is this recipe with a different
``score``: see :mod:`attnlib.scoring`.
"""

from __future__ import annotations

from typing import Optional, Union

import torch.nn.functional as F
from torch import Tensor, nn

from . import functional as AF
from ._checks import check_dim_equal, check_min_rank
from .record import emit

__all__ = ["AttentionPooling"]


class AttentionPooling(nn.Module):
    """Attention pooling with any scoring module.

    The weights are emitted to :mod:`attnlib.record` (shape ``(..., L, S)``) on every call.

    Args:
        score: a module mapping ``q (..., L, Eq), k (..., S, Ek)`` to ``(..., L, S)``,
            e.g. :class:`attnlib.scoring.AdditiveScore`.
        dropout: probability of zeroing a weight during training (off in ``eval()``).
        temperature: divides the scores before the softmax.
    """

    def __init__(self, score: nn.Module, dropout: float = 0.0, temperature: float = 1.0) -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1); got {dropout}")
        self.score = score
        self.dropout = dropout
        self.temperature = temperature

    def forward(
        self,
        q: Tensor,
        k: Tensor,
        v: Tensor,
        mask: Optional[Tensor] = None,
        *,
        return_weights: bool = False,
    ) -> Union[Tensor, tuple[Tensor, Tensor]]:
        """Pool ``v`` for every query.

        Args:
            q: ``(..., L, Eq)`` queries.
            k: ``(..., S, Ek)`` keys.
            v: ``(..., S, Ev)`` values, one per key.
            mask: boolean (``True`` = may attend) or additive mask broadcastable to
                ``(..., L, S)``, e.g. ``lengths_to_mask(lengths)[:, None, :]`` for padding.
            return_weights: also return the weights.

        Returns:
            ``(..., L, Ev)`` output, or ``(output, weights (..., L, S))``.
        """
        check_min_rank(v, "v", 2, "(..., S, Ev)")
        check_dim_equal(k, "k", -2, v, "v", -2, "the number of keys S (second-to-last dimension)")
        scores = self.score(q, k)  # (..., L, S)
        weights = AF.masked_softmax(scores, mask, temperature=self.temperature)  # (..., L, S)
        emit(self, weights)
        dropped = F.dropout(weights, self.dropout, self.training) if self.dropout > 0 else weights
        out = dropped @ v  # (..., L, Ev)
        return (out, weights) if return_weights else out

    def extra_repr(self) -> str:
        return f"dropout={self.dropout}, temperature={self.temperature}"
