"""Variational attention: the alignment as a categorical latent variable, trained on the ELBO.

Deng, Kim, Chiu, Guo and Rush, *Latent Alignment and Variational Attention*, NeurIPS 2018
(arXiv:1807.03756).  Soft attention feeds the expected value ``sum_i p_i v_i`` to the
output; a latent alignment instead picks one position ``z ~ p(z | x, q)`` and predicts
from it, ``p(y | x, q) = sum_z p(z | x, q) p(y | v_z)``.  With an inference network
``q(z | x, q, y)`` that also sees the target, the evidence lower bound is

    log p(y | x, q) >= ELBO = E_{z ~ q}[log p(y | v_z)] - KL(q(z) || p(z))

Its gradient with respect to ``q`` cannot go through the discrete draw.  Three estimators
(:func:`elbo_surrogate`, argument ``estimator``):

* ``"score_function"`` (Williams, 1992): ``grad E_q[f] = E_q[(f(z) - b) grad log q(z)]``,
  unbiased for any ``b`` that does not depend on ``z``.  With ``S > 1`` samples each one's
  baseline is the mean of the others' ``f`` (leave-one-out, still unbiased).
* ``"gumbel"`` (Jang et al., 2017; Maddison et al., 2017): ``z~ = softmax((log q + g) / tau)``
  with Gumbel noise ``g``, a point inside the simplex that is differentiable in ``q``; the
  likelihood is evaluated at the relaxed ``z~``, so the gradient is biased but low-variance.
* ``"exact"``: enumerate every position, ``sum_z q(z) f(z)``: affordable for short inputs
  and the reference the two estimators are checked against.

The KL between two categoricals is exact in every case.  The likelihood is passed as a
function of the alignment weights (one-hot, relaxed, or the identity matrix's rows), so the
same code serves any predictor ``p(y | v_z)``.

:class:`VariationalAttention` holds the two scorers: the prior ``p(z | x, q)`` (bilinear in
the query and the keys) and the posterior ``q(z | x, q, y)`` (the prior's scores plus a
bilinear score of an embedding of the target against the values).  It emits the prior's
weights ``(B, S)``.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnlib._checks import check_floating, check_rank, shape_str
from attnlib.record import emit

__all__ = [
    "ESTIMATORS",
    "ELBOTerms",
    "categorical_kl",
    "gumbel_softmax_sample",
    "elbo_surrogate",
    "VariationalAttention",
]

ESTIMATORS: tuple[str, ...] = ("score_function", "gumbel", "exact")
LogLikelihood = Callable[[Tensor], Tensor]


class ELBOTerms(NamedTuple):
    """What :func:`elbo_surrogate` returns: minimise ``loss``; the others are for reporting."""

    loss: Tensor  #: scalar whose gradient is the estimator's estimate of ``-grad mean_b ELBO``
    elbo: Tensor  #: ``(B,)``, the ELBO's estimate (exact for ``"exact"``), detached
    log_likelihood: Tensor  #: ``(B,)``, ``E_q[log p(y | v_z)]``'s estimate, detached
    kl: Tensor  #: ``(B,)``, ``KL(q || p)``, detached


def categorical_kl(q_logits: Tensor, p_logits: Tensor) -> Tensor:
    """``KL(q || p) = sum_z q(z) (log q(z) - log p(z))`` for logits ``(B, S)``; returns ``(B,)``.

    Positions where ``q`` is zero (logit ``-inf``) contribute nothing.
    """
    check_rank(q_logits, "q_logits", 2, "(B, S)")
    if p_logits.shape != q_logits.shape:
        raise ValueError(
            f"p_logits must have the shape of q_logits {shape_str(q_logits.shape)}; got {shape_str(p_logits.shape)}"
        )
    log_q = torch.log_softmax(q_logits, dim=-1)  # (B, S)
    log_p = torch.log_softmax(p_logits, dim=-1)  # (B, S)
    terms = log_q.exp() * (log_q - log_p)  # (B, S)
    return torch.where(log_q.exp() > 0, terms, torch.zeros_like(terms)).sum(dim=-1)  # (B,)


def gumbel_softmax_sample(logits: Tensor, tau: float = 0.5, *, generator: Optional[torch.Generator] = None) -> Tensor:
    """A relaxed one-hot sample ``softmax((log_softmax(logits) + g) / tau)``, ``g ~ Gumbel(0, 1)``.

    Args:
        logits: ``(..., S)``.
        tau: temperature; as ``tau -> 0`` the samples approach one-hot draws from ``softmax(logits)``.
        generator: for the noise.

    Returns:
        ``(..., S)`` on the simplex, differentiable in ``logits``.
    """
    if tau <= 0:
        raise ValueError(f"tau must be positive; got {tau}")
    u = torch.rand(logits.shape, generator=generator, dtype=logits.dtype, device=logits.device)
    g = -torch.log((-torch.log(u.clamp_min(1e-20))).clamp_min(1e-20))  # (..., S) Gumbel(0, 1)
    return torch.softmax((torch.log_softmax(logits, dim=-1) + g) / tau, dim=-1)  # (..., S)


def elbo_surrogate(
    q_logits: Tensor,
    p_logits: Tensor,
    log_likelihood: LogLikelihood,
    *,
    estimator: str = "score_function",
    num_samples: int = 1,
    tau: float = 0.5,
    baseline: Optional[Tensor] = None,
    samples: Optional[Tensor] = None,
    generator: Optional[torch.Generator] = None,
) -> ELBOTerms:
    """A loss whose gradient estimates ``-grad mean_b ELBO_b`` (the module docstring's bound).

    Args:
        q_logits: ``(B, S)``, the posterior ``q(z | x, q, y)``'s scores.
        p_logits: ``(B, S)``, the prior ``p(z | x, q)``'s scores.
        log_likelihood: maps alignment weights ``(B, S)`` (one-hot, relaxed, or a row of the
            identity) to ``log p(y | x, z)`` ``(B,)``.
        estimator: one of ``ESTIMATORS``.
        num_samples: samples per example for ``"score_function"`` and ``"gumbel"``.
        tau: the Gumbel-softmax temperature.
        baseline: ``(B,)``, a control variate for ``"score_function"`` used instead of the
            leave-one-out mean (it must not depend on the sampled ``z``); detached here.
        samples: ``(num_samples, B)`` positions to use instead of drawing them (for
            ``"score_function"``; lets a test average the estimator over every outcome exactly).
        generator: for the draws.

    Returns:
        :class:`ELBOTerms`.

    Raises:
        ValueError: for an unknown estimator, mismatched shapes, or bad sample counts.
    """
    check_rank(q_logits, "q_logits", 2, "(B, S)")
    check_floating(q_logits, "q_logits")
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}; got {estimator!r}")
    if num_samples < 1:
        raise ValueError(f"num_samples must be at least 1; got {num_samples}")
    kl = categorical_kl(q_logits, p_logits)  # (B,)
    bsz, s = q_logits.shape
    log_q = torch.log_softmax(q_logits, dim=-1)  # (B, S)
    if estimator == "exact":
        eye = torch.eye(s, dtype=q_logits.dtype, device=q_logits.device)
        f = torch.stack([log_likelihood(eye[i].expand(bsz, s)) for i in range(s)], dim=1)  # (B, S)
        expected = (log_q.exp() * f).sum(dim=1)  # (B,)
        surrogate = expected
    elif estimator == "gumbel":
        f = torch.stack(
            [log_likelihood(gumbel_softmax_sample(q_logits, tau, generator=generator)) for _ in range(num_samples)]
        )  # (num_samples, B)
        expected = surrogate = f.mean(dim=0)  # (B,)
    else:
        if samples is None:
            samples = torch.multinomial(log_q.exp().detach(), num_samples, replacement=True, generator=generator).T
        if samples.shape != (num_samples, bsz):
            raise ValueError(
                f"samples must have shape (num_samples, B) = ({num_samples}, {bsz}); got {shape_str(samples.shape)}"
            )
        one_hot = F.one_hot(samples, s).to(q_logits.dtype)  # (num_samples, B, S)
        f = torch.stack([log_likelihood(one_hot[j]) for j in range(num_samples)])  # (num_samples, B)
        log_q_z = log_q.gather(1, samples.T).T  # (num_samples, B)
        if baseline is not None:
            check_rank(baseline, "baseline", 1, "(B,)")
            b = baseline.detach()[None].expand_as(f)  # (num_samples, B)
        elif num_samples > 1:
            b = (f.sum(dim=0, keepdim=True) - f) / (num_samples - 1)  # (num_samples, B), leave-one-out mean
        else:
            b = torch.zeros_like(f)
        expected = f.mean(dim=0)  # (B,)
        # f carries the pathwise gradient (through the predictor); the score term carries grad q.
        surrogate = (f + (f - b).detach() * log_q_z).mean(dim=0)  # (B,)
    loss = -(surrogate - kl).mean()
    return ELBOTerms(loss, (expected - kl).detach(), expected.detach(), kl.detach())


class VariationalAttention(nn.Module):
    """The prior and the posterior of a categorical alignment (Deng et al., 2018).

    Shapes:
        ``query`` ``(B, Dq)``, ``keys`` ``(B, S, Dk)``, ``values`` ``(B, S, Dv)``,
        ``target`` ``(B, Dy)`` (an embedding of the output); scores ``(B, S)``.

    ``forward(query, keys, values)`` returns the soft context under the prior,
    ``sum_i p_i v_i`` ``(B, Dv)`` (what a soft-attention model would use at test time), and emits
    the prior's weights ``(B, S)``; :meth:`prior_logits` and :meth:`posterior_logits` give the two
    distributions for :func:`elbo_surrogate`.

    Args:
        query_size, key_size, value_size, target_size: ``Dq``, ``Dk``, ``Dv``, ``Dy``.
    """

    def __init__(self, query_size: int, key_size: int, value_size: int, target_size: int) -> None:
        super().__init__()
        self.prior = nn.Bilinear(query_size, key_size, 1, bias=False)
        self.inference = nn.Bilinear(target_size, value_size, 1, bias=False)
        self.sizes = (query_size, key_size, value_size, target_size)

    def _check(self, query: Tensor, keys: Tensor) -> None:
        check_rank(query, "query", 2, "(B, Dq)")
        check_rank(keys, "keys", 3, "(B, S, Dk)")
        if query.shape[0] != keys.shape[0] or query.shape[1] != self.sizes[0] or keys.shape[2] != self.sizes[1]:
            raise ValueError(
                f"query must be (B, {self.sizes[0]}) and keys (B, S, {self.sizes[1]}); "
                f"got query {shape_str(query.shape)}, keys {shape_str(keys.shape)}"
            )

    def prior_logits(self, query: Tensor, keys: Tensor) -> Tensor:
        """``log p(z | x, q)`` up to a constant: ``q^T W k_i`` ``(B, S)``."""
        self._check(query, keys)
        s = keys.shape[1]
        q = query[:, None, :].expand(-1, s, -1).contiguous()  # (B, S, Dq)
        return self.prior(q, keys.contiguous()).squeeze(-1)  # (B, S)

    def posterior_logits(self, query: Tensor, keys: Tensor, values: Tensor, target: Tensor) -> Tensor:
        """``log q(z | x, q, y)`` up to a constant: prior scores ``+ y^T U v_i`` ``(B, S)``."""
        check_rank(values, "values", 3, "(B, S, Dv)")
        check_rank(target, "target", 2, "(B, Dy)")
        s = values.shape[1]
        y = target[:, None, :].expand(-1, s, -1).contiguous()  # (B, S, Dy)
        return self.prior_logits(query, keys) + self.inference(y, values.contiguous()).squeeze(-1)  # (B, S)

    def forward(self, query: Tensor, keys: Tensor, values: Tensor) -> Tensor:
        weights = torch.softmax(self.prior_logits(query, keys), dim=-1)  # (B, S)
        emit(self, weights)
        return (weights[:, :, None] * values).sum(dim=1)  # (B, S, 1) * (B, S, Dv) -> (B, Dv)
