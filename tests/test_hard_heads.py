"""attnlib.hard.heads: the action and baseline networks of the RAM."""

from __future__ import annotations

import torch

from attnlib.hard.heads import ActionNetwork, BaselineNetwork


def test_baseline_and_action_networks():
    h = torch.randn(5, 9)
    assert BaselineNetwork(9)(h).shape == (5,)
    log_probs = ActionNetwork(9, 4)(h)
    assert log_probs.shape == (5, 4) and torch.allclose(log_probs.exp().sum(-1), torch.ones(5))
