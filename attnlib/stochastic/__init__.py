"""Attention as a random variable: weights that are sampled or inferred rather than computed.

The families of hard attention in the survey of Hassanin et al. (2024, arXiv:2204.07756) that
treat the attention weights as latent variables. One mechanism per module file; the public
names are re-exported here.

- :mod:`~attnlib.stochastic.variational_attention`: a categorical alignment as a latent
  variable, trained on the ELBO with the score-function estimator or a Gumbel-softmax
  relaxation (Deng et al., 2018);
- :mod:`~attnlib.stochastic.bayesian_attention`: log-normal or Weibull weights normalised onto
  the simplex, with a contextual prior from the keys and its KL term (Fan et al., 2020);
- :mod:`~attnlib.stochastic.reinforced_attention`: independent Bernoulli-sigmoid keep/drop
  gates trained with REINFORCE (Williams, 1992) and :mod:`attnlib.hard`'s baseline pieces, a
  simplified form of ReSA's selection (Shen et al., 2018), optionally followed by soft attention
  over the kept positions;
- :mod:`~attnlib.stochastic.gaussian_attention`: one 2-D Gaussian kernel with predicted mean
  and covariance as a spatial map (DRAW's grid of Gaussians is :mod:`attnlib.draw`);
- :mod:`~attnlib.stochastic.self_critic_attention`: a critic that scores attention maps and
  trains the attention from its score (Chen et al., 2019);
- :mod:`~attnlib.stochastic.em_attention`: expectation-maximisation attention, K bases found
  by EM, a drop-in ``(B, C, H, W)`` block (Li et al., 2019).
"""

from __future__ import annotations

from .bayesian_attention import (
    DISTRIBUTIONS,
    BayesianAttention,
    BayesianAttentionOutput,
    lognormal_kl,
    sample_log_weights,
    weibull_gamma_kl,
)
from .em_attention import EMAU, EMAttention, EMResult, em_iterations, em_objective
from .gaussian_attention import GaussianAttention, GaussianParams, gaussian_attention_map, gaussian_params
from .reinforced_attention import (
    POOLINGS,
    GateOutput,
    ReinforcedAttention,
    bernoulli_log_prob,
    expected_gate_gradient,
    gate_score_samples,
    keep_share,
)
from .self_critic_attention import (
    AttentionCritic,
    SelfCriticAttention,
    SelfCriticLosses,
    attention_gain,
    self_critic_losses,
)
from .variational_attention import (
    ESTIMATORS,
    ELBOTerms,
    VariationalAttention,
    categorical_kl,
    elbo_surrogate,
    gumbel_softmax_sample,
)

__all__ = [
    "DISTRIBUTIONS",
    "BayesianAttention",
    "BayesianAttentionOutput",
    "lognormal_kl",
    "sample_log_weights",
    "weibull_gamma_kl",
    "EMAU",
    "EMAttention",
    "EMResult",
    "em_iterations",
    "em_objective",
    "GaussianAttention",
    "GaussianParams",
    "gaussian_attention_map",
    "gaussian_params",
    "GateOutput",
    "ReinforcedAttention",
    "bernoulli_log_prob",
    "expected_gate_gradient",
    "gate_score_samples",
    "keep_share",
    "POOLINGS",
    "AttentionCritic",
    "SelfCriticAttention",
    "SelfCriticLosses",
    "attention_gain",
    "self_critic_losses",
    "ESTIMATORS",
    "ELBOTerms",
    "VariationalAttention",
    "categorical_kl",
    "elbo_surrogate",
    "gumbel_softmax_sample",
]
