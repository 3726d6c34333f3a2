"""Hard (stochastic) attention: the variational lower bound, trained with REINFORCE.

Xu et al., *Show, Attend and Tell*, ICML 2015 (arXiv:1502.03044), section 4.1.  With the
attended cells ``s = (s_1, ..., s_T)`` a latent variable, the model maximises the bound

    L_s = sum_s p(s | a) log p(y | s, a)  <=  log p(y | a),

whose gradient (eq. 10-12) is estimated with ``N`` sampled sequences ``s~ ~ Multinoulli(alpha)``:

    dL_s/dW ≈ 1/N sum_n [ d log p(y | s~, a)/dW
                          + lambda_r (log p(y | s~, a) - b) d log p(s~ | a)/dW
                          + lambda_e dH[s~]/dW ].

The middle term is REINFORCE (Williams, 1992) with the reward ``log p(y | s~, a)`` and a
baseline ``b`` (:func:`~attnlib.hard.reinforce.reinforce_loss` forms it); the last is an entropy bonus.
The paper's tricks, all here:

* the **moving-average baseline** ``b_k = 0.9 b_{k-1} + 0.1 log p(y | s~_k, a)``
  (:class:`MovingAverageBaseline`);
* the **entropy** ``H`` of the attention distribution;
* with probability ``0.5`` the sampled location is replaced by its **expectation** ``alpha``
  (the soft context).

What the paper gives and what comes from the authors' code (``kelvinxu/arctic-captions``,
``capgen.py``): the 0.9 / 0.1 baseline and the probability 0.5 are the paper's; the paper
leaves ``lambda_r`` and ``lambda_e`` to cross-validation.  The authors' code uses
``alpha_entropy_c = 0.002`` for ``lambda_e``, scales the REINFORCE term by 1/10, draws *one*
coin per minibatch for the expectation trick (``h_sampling_mask``), and, on an expectation
pass, its REINFORCE term cancels (a gradient equal on every ``alpha_i`` vanishes through the
softmax).  We follow those choices, with our defaults ``lambda_r = 0.1`` and
``lambda_e = 0.002``; our reward is the caption's summed log-likelihood as in the paper
(the authors' code uses the mean over words), and the baseline learns only from sampled
passes.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import torch
from torch import Tensor, nn

from attnlib.hard import reinforce_loss

from .show_attend_tell import ShowAttendTell, caption_nll

__all__ = ["MovingAverageBaseline", "HardAttentionLoss", "hard_attention_loss", "attention_entropy"]


class MovingAverageBaseline(nn.Module):
    """``b <- momentum * b + (1 - momentum) * mean(reward)``; the paper's momentum is 0.9, ``b_0 = 0``."""

    value: Tensor

    def __init__(self, momentum: float = 0.9) -> None:
        super().__init__()
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1); got {momentum}")
        self.momentum = momentum
        self.register_buffer("value", torch.zeros(()))

    @torch.no_grad()
    def update(self, rewards: Tensor) -> Tensor:
        """Fold ``rewards (B,)`` in; returns the new value."""
        self.value.mul_(self.momentum).add_((1 - self.momentum) * rewards.detach().float().mean())
        return self.value


def attention_entropy(alphas: Tensor, mask: Optional[Tensor] = None) -> Tensor:
    """``H = -sum_i alpha_ti log alpha_ti`` summed over the (masked) steps: ``(B, T, L)`` -> ``(B,)``."""
    entropy = -(alphas * alphas.clamp_min(1e-12).log()).sum(dim=-1)  # (B, T)
    if mask is not None:
        entropy = entropy * mask  # (B, T)
    return entropy.sum(dim=1)  # (B,)


class HardAttentionLoss(NamedTuple):
    """Terms of one hard-attention training step (scalars unless noted)."""

    total: Tensor  #: likelihood + lambda_r * reinforce - lambda_e * entropy
    likelihood: Tensor  #: ``-log p(y | s~, a)``, mean over the batch
    reinforce: Tensor  #: the REINFORCE surrogate (0 on an expectation pass)
    entropy: Tensor  #: mean over the batch of the summed attention entropy
    reward: Tensor  #: ``(B,)``: ``log p(y | s~, a)``
    baseline: Tensor  #: the baseline ``b`` used for this step
    expectation: bool  #: True when this pass used ``alpha`` instead of a sample


def hard_attention_loss(
    model: ShowAttendTell,
    inputs: Tensor,
    captions: Tensor,
    baseline: MovingAverageBaseline,
    *,
    reinforce_weight: float = 0.1,
    entropy_weight: float = 0.002,
    expectation_prob: float = 0.5,
    generator: Optional[torch.Generator] = None,
) -> HardAttentionLoss:
    """Run ``model`` (hard attention) on a batch and form the section 4.1 objective.

    One coin with probability ``expectation_prob`` decides whether the whole pass uses the
    expectation ``alpha`` (then there is no sample and no REINFORCE term) or one sampled
    cell per step.  On a sampled pass the baseline is used, then updated with the batch's
    rewards.

    Args:
        model: a :class:`~attnlib.captioning.show_attend_tell.ShowAttendTell` with ``attention="hard"``.
        inputs: images ``(B, C, H, W)`` or encoder features ``(B, L, D)``; ``captions``: ``(B, T)``.
        baseline: the running :class:`MovingAverageBaseline` (updated in place).
        reinforce_weight: ``lambda_r``.
        entropy_weight: ``lambda_e``.
        expectation_prob: the paper's 0.5.
        generator: draws the coin and the samples.

    Returns:
        A :class:`HardAttentionLoss`; backpropagate ``total``.

    Raises:
        ValueError: if the model does not use hard attention.
    """
    if model.config.attention != "hard":
        raise ValueError(f"hard_attention_loss needs a model with attention='hard'; got {model.config.attention!r}")
    if not 0.0 <= expectation_prob <= 1.0:
        raise ValueError(f"expectation_prob must be in [0, 1]; got {expectation_prob}")
    device = inputs.device
    use_expectation = bool(torch.rand((), generator=generator) < expectation_prob)
    output = model(inputs, captions, location="expectation" if use_expectation else "sample", generator=generator)
    mask = captions != model.config.pad_id  # (B, T)
    nll = caption_nll(output.logits, captions, model.config.pad_id)  # (B,)
    reward = -nll.detach()  # (B,): log p(y | s~, a)
    entropy = attention_entropy(output.alphas, mask).mean()
    b = baseline.value.detach().clone()
    if use_expectation or output.location_log_probs is None:
        reinforce = torch.zeros((), device=device)
    else:
        log_probs = output.location_log_probs * mask  # (B, T): log p(s~_t | a), pads zeroed
        reinforce = reinforce_loss(log_probs, reward, b.expand_as(log_probs))
        baseline.update(reward)
    total = nll.mean() + reinforce_weight * reinforce - entropy_weight * entropy
    return HardAttentionLoss(total, nll.mean(), reinforce, entropy, reward, b, use_expectation)
