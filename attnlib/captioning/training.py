"""Training Show, Attend and Tell on precomputed annotations: the loop the chapter and the experiment share.

Xu et al. (2015, arXiv:1502.03044) keep the encoder fixed, so its annotations can be
computed once per image; each training step then runs only the decoder.  :func:`train_captioner`
takes those features and the captions and runs Adam with a cosine learning-rate decay over
a fixed number of steps, with the soft objective
(:func:`~attnlib.captioning.doubly_stochastic.soft_attention_loss`) or the hard one
(:func:`~attnlib.captioning.hard_attention_loss.hard_attention_loss`) according to the
model's configuration, and logs every term of every step.  The paper trains with RMSProp
(Flickr8k) and Adam (Flickr30k, COCO); the step budget, learning rate and clipping are ours.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor, nn

from attnlib.train import minibatches, progress

from .doubly_stochastic import soft_attention_loss
from .hard_attention_loss import MovingAverageBaseline, hard_attention_loss
from .show_attend_tell import ShowAttendTell

__all__ = ["train_captioner"]


def train_captioner(
    model: ShowAttendTell,
    features: Tensor,
    captions: Tensor,
    lengths: Tensor,
    *,
    steps: int,
    batch_size: int = 64,
    lr: float = 3e-3,
    clip_grad_norm: float = 5.0,
    doubly_stochastic_weight: float = 0.0,
    reinforce_weight: float = 0.1,
    entropy_weight: float = 0.002,
    expectation_prob: float = 0.5,
    generator: Optional[torch.Generator] = None,
    show_progress: bool = True,
) -> dict[str, list[float]]:
    """Train the decoder for ``steps`` minibatches of precomputed encoder features.

    Args:
        model: a :class:`~attnlib.captioning.show_attend_tell.ShowAttendTell`; its parameters that
            require gradients are trained (freeze the encoder first with
            ``model.encoder.requires_grad_(False)``).
        features: ``(N, L, D)`` the frozen encoder's output for every training image.
        captions: ``(N, T)`` token ids; ``lengths``: ``(N,)`` tokens per caption with ``<eos>``
            (each batch is cut to its longest caption).
        steps: optimiser steps (passes over the data as often as needed).
        doubly_stochastic_weight: ``lambda`` of the soft objective; our default is 0 (short captions
            over a larger grid make the penalty pull towards uniform maps), the authors' COCO
            script uses 1.
        reinforce_weight, entropy_weight, expectation_prob: the hard objective's constants.
        generator: batch order, hard samples and the expectation coin.

    Returns:
        The per-step logs, ``"likelihood"`` always; ``"penalty"`` (soft) or ``"reinforce"``,
        ``"entropy"``, ``"reward"``, ``"baseline"`` and ``"expectation"`` (hard).  The model is
        left in ``eval()`` mode.

    Raises:
        ValueError: for ``steps < 1`` or inputs that disagree on ``N``.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1; got {steps}")
    if not features.shape[0] == captions.shape[0] == lengths.shape[0]:
        raise ValueError(
            f"features {tuple(features.shape)}, captions {tuple(captions.shape)} and lengths "
            f"{tuple(lengths.shape)} must share their first dimension N"
        )
    device = next(model.parameters()).device
    trained = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trained, lr=lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))
    hard = model.config.attention == "hard"
    baseline = MovingAverageBaseline().to(device)
    keys = (
        ("likelihood", "reinforce", "entropy", "reward", "baseline", "expectation")
        if hard
        else ("likelihood", "penalty")
    )
    log: dict[str, list[float]] = {key: [] for key in keys}
    bar = progress(total=steps, desc=f"{model.config.attention} attention", disable=not show_progress)
    model.train()
    while len(log["likelihood"]) < steps:
        for x, y, n in minibatches(features, captions, lengths, batch_size=batch_size, generator=generator):
            x, y = x.to(device), y[:, : int(n.max())].to(device)  # (b, L, D), (b, T_batch)
            if hard:
                terms = hard_attention_loss(
                    model,
                    x,
                    y,
                    baseline,
                    reinforce_weight=reinforce_weight,
                    entropy_weight=entropy_weight,
                    expectation_prob=expectation_prob,
                    generator=generator,
                )
                total = terms.total
                values: tuple[float, ...] = (
                    terms.likelihood.item(),
                    terms.reinforce.item(),
                    terms.entropy.item(),
                    terms.reward.mean().item(),
                    terms.baseline.item(),
                    float(terms.expectation),
                )
            else:
                soft = soft_attention_loss(
                    model(x, y), y, doubly_stochastic_weight=doubly_stochastic_weight, pad_id=model.config.pad_id
                )
                total = soft.total
                values = (soft.likelihood.item(), soft.penalty.item())
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            nn.utils.clip_grad_norm_(trained, clip_grad_norm)
            optimizer.step()
            schedule.step()
            for key, value in zip(keys, values):
                log[key].append(value)
            bar.update()
            if len(log["likelihood"]) == steps:
                break
    bar.close()
    model.eval()
    return log
