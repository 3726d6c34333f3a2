"""REINFORCE: gradients through a sampled choice, and the hybrid loss of the RAM.

Williams, *Simple Statistical Gradient-Following Algorithms for Connectionist
Reinforcement Learning*, Machine Learning 8, 1992: for a policy ``pi_theta(a)`` and a
reward ``r(a)``,

    grad_theta E_{a ~ pi}[r(a)] = E_{a ~ pi}[(r(a) - b) grad_theta log pi_theta(a)]

for any baseline ``b`` that does not depend on ``a`` (the *score-function* estimator).
The baseline leaves the mean unchanged and, well chosen (close to ``E[r]``), shrinks the
variance.  In autograd terms the estimator is the gradient of the *surrogate loss*
``-(r - b).detach() * log pi(a)``: the reward and the baseline are constants for it.

Mnih et al., *Recurrent Models of Visual Attention*, NeurIPS 2014 (arXiv:1406.6247),
train the Recurrent Attention Model with a **hybrid loss** (section 3.2): the classifier
by cross-entropy, the location policy by REINFORCE with reward ``R = 1`` when the final
classification is correct (else 0) and a learned baseline ``b_t``, and the baseline by
regression of ``b_t`` on ``R``.  :func:`hybrid_loss` returns the three terms separately.

The helpers on a categorical policy (:func:`expected_reward_gradient`,
:func:`score_function_samples`) are what the chapter uses to check the estimator against
the exact gradient and to measure its variance.
"""

from __future__ import annotations

from typing import NamedTuple, Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from attnlib._checks import check_rank, shape_str

__all__ = [
    "reinforce_loss",
    "HybridLoss",
    "hybrid_loss",
    "expected_reward_gradient",
    "score_function_samples",
]


def reinforce_loss(log_probs: Tensor, rewards: Tensor, baselines: Optional[Tensor] = None) -> Tensor:
    """The REINFORCE surrogate ``mean_b( -sum_t (R_b - b_bt).detach() * log pi_bt )``.

    Its gradient with respect to the policy's parameters is the score-function estimate of
    ``-grad E[R]``; the reward and the baseline are detached, so no gradient reaches the
    baseline through this term.

    Args:
        log_probs: ``(B, T)`` (or ``(B,)``), the log-probability of each action taken.
        rewards: ``(B,)``, one reward per episode (given to every step).
        baselines: ``(B, T)`` (or ``(B,)``, or ``None`` for no baseline).

    Returns:
        A scalar.

    Raises:
        ValueError: if the shapes do not match.
    """
    if log_probs.dim() == 1:
        log_probs = log_probs[:, None]  # (B, 1)
    check_rank(log_probs, "log_probs", 2, "(B, T)")
    check_rank(rewards, "rewards", 1, "(B,)")
    if rewards.shape[0] != log_probs.shape[0]:
        raise ValueError(f"rewards must have shape (B,) = ({log_probs.shape[0]},); got {shape_str(rewards.shape)}")
    advantage = rewards[:, None].expand_as(log_probs)  # (B, T)
    if baselines is not None:
        baselines = baselines[:, None] if baselines.dim() == 1 else baselines  # (B, T)
        if baselines.shape != log_probs.shape:
            raise ValueError(
                f"baselines must have the shape of log_probs {shape_str(log_probs.shape)}; "
                f"got {shape_str(baselines.shape)}"
            )
        advantage = advantage - baselines  # (B, T)
    return -(advantage.detach() * log_probs).sum(dim=1).mean()  # (B, T) -> (B,) -> scalar


class HybridLoss(NamedTuple):
    """The terms of the RAM's hybrid loss (scalars except ``reward``)."""

    total: Tensor  #: classification + reinforce + baseline
    classification: Tensor  #: NLL of the final classification
    reinforce: Tensor  #: the REINFORCE surrogate for the location policy
    baseline: Tensor  #: mean squared error of the baselines against the reward
    reward: Tensor  #: ``(B,)``: 1 where the classification was correct, else 0


def hybrid_loss(
    log_probs: Tensor,
    targets: Tensor,
    location_log_probs: Tensor,
    baselines: Tensor,
    *,
    reinforce_weight: float = 1.0,
) -> HybridLoss:
    """Classification NLL + REINFORCE with a baseline + baseline regression.

    ``R_b = 1[argmax_k log_probs_bk == y_b]``;
    ``total = NLL + reinforce_weight * mean_b(-sum_t (R_b - b_bt).detach() log pi_bt)
    + mean_bt (b_bt - R_b)^2``.

    Args:
        log_probs: ``(B, K)`` class log-probabilities after the last glimpse.
        targets: ``(B,)`` class indices.
        location_log_probs: ``(B, T)`` log-probabilities of the sampled locations.
        baselines: ``(B, T)`` the baseline's reward prediction at each step.
        reinforce_weight: scale of the REINFORCE term (1 in the paper).

    Returns:
        A :class:`HybridLoss`.

    Raises:
        ValueError: if the shapes do not match.
    """
    check_rank(log_probs, "log_probs", 2, "(B, K)")
    check_rank(targets, "targets", 1, "(B,)")
    check_rank(location_log_probs, "location_log_probs", 2, "(B, T)")
    if baselines.shape != location_log_probs.shape:
        raise ValueError(
            f"baselines must have the shape of location_log_probs {shape_str(location_log_probs.shape)}; "
            f"got {shape_str(baselines.shape)}"
        )
    if targets.shape[0] != log_probs.shape[0] or location_log_probs.shape[0] != log_probs.shape[0]:
        raise ValueError(
            f"log_probs {shape_str(log_probs.shape)}, targets {shape_str(targets.shape)} and location_log_probs "
            f"{shape_str(location_log_probs.shape)} must share the batch size B"
        )
    classification = F.nll_loss(log_probs, targets)
    reward = (log_probs.argmax(dim=-1) == targets).to(log_probs.dtype).detach()  # (B,)
    reinforce = reinforce_loss(location_log_probs, reward, baselines)
    baseline = F.mse_loss(baselines, reward[:, None].expand_as(baselines))  # (B, T) against (B, 1)
    total = classification + reinforce_weight * reinforce + baseline
    return HybridLoss(total, classification, reinforce, baseline, reward)


def expected_reward_gradient(logits: Tensor, rewards: Tensor) -> Tensor:
    """The exact gradient of ``E_{a ~ softmax(logits)}[r(a)] = sum_a p_a r_a``.

    Args:
        logits: ``(K,)``.
        rewards: ``(K,)``, the reward of each action.

    Returns:
        ``(K,)``: ``p * (r - E[r])`` (the derivative of the softmax-weighted sum).
    """
    check_rank(logits, "logits", 1, "(K,)")
    if rewards.shape != logits.shape:
        raise ValueError(
            f"rewards must have the shape of logits {shape_str(logits.shape)}; got {shape_str(rewards.shape)}"
        )
    p = torch.softmax(logits, dim=0)  # (K,)
    return p * (rewards - (p * rewards).sum())


def score_function_samples(
    logits: Tensor,
    rewards: Tensor,
    num_samples: int,
    *,
    baseline: Union[float, Tensor, None] = None,
    generator: Optional[torch.Generator] = None,
) -> Tensor:
    """Single-sample score-function estimates of :func:`expected_reward_gradient`.

    For each of ``num_samples`` actions ``a ~ softmax(logits)``, the estimate is
    ``(r(a) - b) * grad log p_a = (r(a) - b) * (onehot(a) - p)``.  Their mean converges to
    the exact gradient; their spread is the estimator's variance.

    Args:
        logits: ``(K,)``.
        rewards: ``(K,)``.
        num_samples: ``N``.
        baseline: a constant ``b`` (``None`` = 0).
        generator: for the draws.

    Returns:
        ``(N, K)``, one estimate per row.
    """
    check_rank(logits, "logits", 1, "(K,)")
    if rewards.shape != logits.shape:
        raise ValueError(
            f"rewards must have the shape of logits {shape_str(logits.shape)}; got {shape_str(rewards.shape)}"
        )
    p = torch.softmax(logits, dim=0)  # (K,)
    actions = torch.multinomial(p, num_samples, replacement=True, generator=generator)  # (N,)
    score = F.one_hot(actions, logits.shape[0]).to(p.dtype) - p  # (N, K): grad of log p_a
    b = 0.0 if baseline is None else baseline
    return (rewards[actions] - b)[:, None] * score  # (N, K)
