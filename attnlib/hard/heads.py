"""The two readouts of the RAM's core state: the action (classifier) and the reward baseline.

Mnih, Heess, Graves and Kavukcuoglu, *Recurrent Models of Visual Attention*, NeurIPS 2014
(arXiv:1406.6247), section 4.

* **Action network**: a linear softmax classifier, read after the last glimpse.
* **Baseline network**: ``b_t = w^T h + c``, trained by regression on the reward; it
  reduces the variance of the REINFORCE gradient (:mod:`attnlib.hard.reinforce`).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ActionNetwork", "BaselineNetwork"]


class ActionNetwork(nn.Module):
    """A linear softmax classifier on the core state.

    Args:
        hidden_size: size of the core state ``h``.
        num_classes: number of classes ``K``.
    """

    def __init__(self, hidden_size: int = 256, num_classes: int = 10) -> None:
        super().__init__()
        self.linear = nn.Linear(hidden_size, num_classes)

    def forward(self, h: Tensor) -> Tensor:
        """Args: h ``(B, hidden_size)``.  Returns: log-probabilities ``(B, K)``."""
        return F.log_softmax(self.linear(h), dim=-1)  # (B, K)


class BaselineNetwork(nn.Module):
    """``b = w^T h + c``: the expected reward, a variance-reducing baseline for REINFORCE.

    Args:
        hidden_size: size of the core state ``h``.
    """

    def __init__(self, hidden_size: int = 256) -> None:
        super().__init__()
        self.linear = nn.Linear(hidden_size, 1)

    def forward(self, h: Tensor) -> Tensor:
        """Args: h ``(B, hidden_size)``.  Returns: ``(B,)``."""
        return self.linear(h)[:, 0]  # (B,)
