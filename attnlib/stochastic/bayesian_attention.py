"""Bayesian attention modules: random, reparameterisable attention weights with a contextual prior.

Fan, Zhang, Chen and Zhou, *Bayesian Attention Modules*, NeurIPS 2020 (arXiv:2010.10604).
Soft attention computes ``W = softmax(phi)`` from the scores ``phi_ij`` (here
``q_i . k_j / sqrt(d)``).  A Bayesian attention module instead draws *unnormalised* weights
``S_ij > 0`` from a distribution whose mean is ``exp(phi_ij)`` and normalises them onto the
simplex, ``W_ij = S_ij / sum_j S_ij``.  Two reparameterisable choices:

* **log-normal**: ``log S = phi - sigma^2 / 2 + sigma eps``, ``eps ~ N(0, 1)``;
* **Weibull** ``(k, lambda)`` with ``lambda = exp(phi) / Gamma(1 + 1/k)``:
  ``S = lambda (-log(1 - u))^(1/k)``, ``u ~ U(0, 1)``.

Either way ``E[S] = exp(phi)``; the normalisation is done as a softmax of ``log S``, so it is
stable.  As in the authors' code (github.com/zhougroup/BAM), the posterior is parameterised by
the *log-weights* ``log softmax(phi)`` rather than the raw scores (the normalised draws are the
same; the KL then sees weights, not scores).  The prior is *contextual*, a function of the keys
alone, normalised over them: ``psi = log softmax_j h(relu(h'(k_j)))``.  Log-normal posterior
``(log softmax(phi) - sigma^2 / 2, sigma^2)`` against the log-normal prior ``(psi, sigma_p^2)``;
Weibull posterior with ``lambda = softmax(phi) / Gamma(1 + 1/k)`` against
``Gamma(alpha = beta softmax(psi), beta)``.  Training maximises
``E[log p(y | W)] - lambda_KL KL(q(S) || p(S))``; the KL is closed-form
(:func:`lognormal_kl`, :func:`weibull_gamma_kl`; the second from Zhang et al., 2018,
*WHAI*, arXiv:1803.01328).  At evaluation the module uses the posterior mean,
``softmax(phi)``, unless asked to sample (as for Monte Carlo uncertainty).

What the spread can and cannot say.  ``sigma`` (or ``k``) is a fixed hyperparameter here, as
in the paper and in the authors' code (``--sigma_normal_posterior``, ``--k_weibull``).  Since
the normalisation ignores a shift of ``log S``, a log-normal draw is
``W = softmax(log softmax(phi) + sigma eps)``, and a Weibull draw likewise depends on ``phi``
only through ``softmax(phi)``: the distribution of the sampled weights is a function of the
mean weights alone, so their spread carries no information the mean weights do not.  With
both shape parameters fixed, the KL term does not act on the spread either: for the log-normal
it is ``(log softmax(phi) - sigma^2 / 2 - psi)^2 / (2 sigma_p^2)`` plus a constant, a penalty
pulling the log-weights towards the keys-only prediction ``psi``; for the Weibull-Gamma pair,
at fixed ``k``, it is again smallest when the weights match the prior's (up to a constant
factor set by ``beta``).  Adding a constant to every score changes neither the weights nor
the KL.  The paper uses the sampling as a stochastic regulariser in training and averages
sampled predictions for uncertainty estimates.

Recording: emits the (sampled) weights ``(B, L, S)`` on every call.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Optional

import torch
from torch import Tensor, nn

from attnlib._checks import check_qkv, check_rank
from attnlib.record import emit

__all__ = [
    "DISTRIBUTIONS",
    "EULER_GAMMA",
    "BayesianAttentionOutput",
    "lognormal_kl",
    "weibull_gamma_kl",
    "sample_log_weights",
    "BayesianAttention",
]

DISTRIBUTIONS: tuple[str, ...] = ("lognormal", "weibull")
EULER_GAMMA = 0.5772156649015329


class BayesianAttentionOutput(NamedTuple):
    """What :class:`BayesianAttention` returns."""

    output: Tensor  #: ``(B, L, Ev)``
    weights: Tensor  #: ``(B, L, S)``, each row on the simplex
    kl: Tensor  #: ``(B,)``, ``KL(q || p)`` summed over queries and keys (0 at evaluation without sampling)


def lognormal_kl(mu_q: Tensor, sigma_q: float, mu_p: Tensor, sigma_p: float) -> Tensor:
    """``KL(LogNormal(mu_q, sigma_q^2) || LogNormal(mu_p, sigma_p^2))``, elementwise (that of the normals)."""
    return math.log(sigma_p / sigma_q) + (sigma_q**2 + (mu_q - mu_p) ** 2) / (2 * sigma_p**2) - 0.5


def weibull_gamma_kl(k: float, log_lam: Tensor, alpha: Tensor, beta: float) -> Tensor:
    """``KL(Weibull(k, lambda) || Gamma(alpha, beta))`` (rate ``beta``), elementwise.

    ``= gamma_E alpha / k - alpha log lambda + log k + beta lambda Gamma(1 + 1/k) - gamma_E - 1
    - alpha log beta + log Gamma(alpha)`` (Zhang et al., 2018).
    """
    lam = log_lam.exp()
    return (
        EULER_GAMMA * alpha / k
        - alpha * log_lam
        + math.log(k)
        + beta * lam * math.exp(math.lgamma(1 + 1 / k))
        - EULER_GAMMA
        - 1
        - alpha * math.log(beta)
        + torch.lgamma(alpha)
    )


def sample_log_weights(
    phi: Tensor, distribution: str, spread: float, *, generator: Optional[torch.Generator] = None
) -> Tensor:
    """``log S`` for unnormalised weights with mean ``exp(phi)``; ``softmax`` of it is on the simplex.

    Args:
        phi: ``(..., S)`` scores.
        distribution: ``"lognormal"`` (``spread`` = ``sigma``) or ``"weibull"`` (``spread`` = ``1 / k``).
        spread: larger is noisier; both distributions approach ``exp(phi)`` as it goes to 0.
        generator: for the noise.

    Returns:
        ``(..., S)``, differentiable in ``phi``.
    """
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"distribution must be one of {DISTRIBUTIONS}; got {distribution!r}")
    if spread <= 0:
        raise ValueError(f"spread must be positive; got {spread}")
    if distribution == "lognormal":
        eps = torch.randn(phi.shape, generator=generator, dtype=phi.dtype, device=phi.device)
        return phi - spread**2 / 2 + spread * eps  # (..., S)
    k = 1.0 / spread
    u = torch.rand(phi.shape, generator=generator, dtype=phi.dtype, device=phi.device).clamp(1e-12, 1 - 1e-7)
    log_lam = phi - math.lgamma(1 + 1 / k)  # (..., S)
    return log_lam + torch.log(-torch.log1p(-u)) / k  # (..., S): log of lambda (-log(1 - u))^(1/k)


class BayesianAttention(nn.Module):
    """Scaled dot-product attention with Bayesian weights (Fan et al., 2020), a drop-in for softmax attention.

    Shapes:
        ``q`` ``(B, L, E)``, ``k`` ``(B, S, E)``, ``v`` ``(B, S, Ev)`` -> :class:`BayesianAttentionOutput`
        with ``output`` ``(B, L, Ev)``, ``weights`` ``(B, L, S)``, ``kl`` ``(B,)``.

    Args:
        embed_dim: ``E``, the size of queries and keys (the contextual prior reads the keys).
        distribution: ``"lognormal"`` (default) or ``"weibull"``.
        spread: posterior noise, ``sigma`` for the log-normal, ``1 / k`` for the Weibull.
        prior_spread: ``sigma_p`` of the log-normal prior.
        prior_rate: ``beta`` of the Gamma prior.
        prior_hidden: width of the prior's network ``h(relu(h'(k)))``.
        sample_in_eval: sample in evaluation mode too (Monte Carlo predictions).

    Raises:
        ValueError: for an unknown distribution or non-positive spreads; on a call, for
            mismatched query/key/value shapes.
    """

    def __init__(
        self,
        embed_dim: int,
        distribution: str = "lognormal",
        spread: float = 0.5,
        prior_spread: float = 1.0,
        prior_rate: float = 1.0,
        prior_hidden: int = 32,
        sample_in_eval: bool = False,
    ) -> None:
        super().__init__()
        if distribution not in DISTRIBUTIONS:
            raise ValueError(f"distribution must be one of {DISTRIBUTIONS}; got {distribution!r}")
        if min(spread, prior_spread, prior_rate) <= 0:
            raise ValueError(
                f"spread, prior_spread and prior_rate must be positive; got {spread}, {prior_spread}, {prior_rate}"
            )
        self.embed_dim, self.distribution = embed_dim, distribution
        self.spread, self.prior_spread, self.prior_rate = spread, prior_spread, prior_rate
        self.sample_in_eval = sample_in_eval
        self.prior = nn.Sequential(nn.Linear(embed_dim, prior_hidden), nn.ReLU(), nn.Linear(prior_hidden, 1))

    def prior_scores(self, k: Tensor) -> Tensor:
        """``psi = log softmax_j h(relu(h'(k_j)))`` ``(B, S)``: the contextual prior's log-weights, from the
        keys alone, normalised over the keys as in the authors' code."""
        return torch.log_softmax(self.prior(k).squeeze(-1), dim=-1)  # (B, S, 1) -> (B, S)

    def forward(
        self, q: Tensor, k: Tensor, v: Tensor, *, generator: Optional[torch.Generator] = None
    ) -> BayesianAttentionOutput:
        check_qkv(q, k, v)
        check_rank(q, "q", 3, "(B, L, E)")
        if q.shape[-1] != self.embed_dim:
            raise ValueError(f"q must have E = embed_dim = {self.embed_dim} features; got {tuple(q.shape)}")
        phi = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, L, E) (B, E, S) -> (B, L, S)
        sample = self.training or self.sample_in_eval
        if sample:
            log_w = torch.log_softmax(phi, dim=-1)  # (B, L, S): the mean weights' logs, as the authors parameterise
            log_s = sample_log_weights(log_w, self.distribution, self.spread, generator=generator)  # (B, L, S)
            psi = self.prior_scores(k)[..., None, :].expand_as(phi)  # (B, 1, S) -> (B, L, S)
            if self.distribution == "lognormal":
                kl = lognormal_kl(log_w - self.spread**2 / 2, self.spread, psi, self.prior_spread)  # (B, L, S)
            else:
                k_shape = 1.0 / self.spread
                log_lam = log_w - math.lgamma(1 + 1 / k_shape)  # (B, L, S)
                alpha = (self.prior_rate * psi.exp()).clamp_min(1e-12)  # (B, L, S): beta softmax(psi)
                kl = weibull_gamma_kl(k_shape, log_lam, alpha, self.prior_rate)  # (B, L, S)
            kl = kl.flatten(1).sum(dim=1)  # (B,)
        else:
            log_s = phi
            kl = phi.new_zeros(phi.shape[:1])  # (B,)
        weights = torch.softmax(log_s, dim=-1)  # (B, L, S): S / sum_j S
        emit(self, weights)
        return BayesianAttentionOutput(weights @ v, weights, kl)  # (B, L, S) (B, S, Ev) -> (B, L, Ev)
