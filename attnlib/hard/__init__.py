"""Hard attention: REINFORCE and the Recurrent Attention Model (Mnih et al., 2014).

One mechanism per module file; the public names are re-exported here.

- :mod:`~attnlib.hard.reinforce`: the score-function estimator and the RAM's hybrid loss;
- :mod:`~attnlib.hard.glimpse`: the glimpse sensor and the networks around it;
- :mod:`~attnlib.hard.ram`: the Recurrent Attention Model.
"""
from __future__ import annotations

from .glimpse import ActionNetwork, BaselineNetwork, CoreNetwork, GlimpseNetwork, GlimpseSensor, LocationNetwork
from .ram import RAMConfig, RAMOutput, RecurrentAttentionModel
from .reinforce import HybridLoss, expected_reward_gradient, hybrid_loss, reinforce_loss, score_function_samples

__all__ = [
    "ActionNetwork", "BaselineNetwork", "CoreNetwork", "GlimpseNetwork", "GlimpseSensor", "LocationNetwork",
    "RAMConfig", "RAMOutput", "RecurrentAttentionModel",
    "HybridLoss", "expected_reward_gradient", "hybrid_loss", "reinforce_loss", "score_function_samples",
]
