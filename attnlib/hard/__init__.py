"""Hard attention: REINFORCE and the Recurrent Attention Model (Mnih et al., 2014).

One mechanism per module file; the public names are re-exported here.

- :mod:`~attnlib.hard.reinforce`: the score-function estimator and the RAM's hybrid loss;
- :mod:`~attnlib.hard.glimpse`: the glimpse sensor and the glimpse network (the "what");
- :mod:`~attnlib.hard.location_policy`: the Gaussian location policy (the "where");
- :mod:`~attnlib.hard.core_network`: the recurrent core that integrates the glimpses;
- :mod:`~attnlib.hard.heads`: the action (classifier) and baseline readouts of the core;
- :mod:`~attnlib.hard.ram`: the Recurrent Attention Model that assembles them.
"""

from __future__ import annotations

from .core_network import CoreNetwork
from .glimpse import GlimpseNetwork, GlimpseSensor
from .heads import ActionNetwork, BaselineNetwork
from .location_policy import LocationNetwork
from .ram import RAMConfig, RAMOutput, RecurrentAttentionModel
from .reinforce import HybridLoss, expected_reward_gradient, hybrid_loss, reinforce_loss, score_function_samples

__all__ = [
    "ActionNetwork",
    "BaselineNetwork",
    "CoreNetwork",
    "GlimpseNetwork",
    "GlimpseSensor",
    "LocationNetwork",
    "RAMConfig",
    "RAMOutput",
    "RecurrentAttentionModel",
    "HybridLoss",
    "expected_reward_gradient",
    "hybrid_loss",
    "reinforce_loss",
    "score_function_samples",
]
