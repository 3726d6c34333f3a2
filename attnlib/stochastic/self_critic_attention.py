"""Self-critical attention: a critic scores each attention map, and the attention learns from the score.

Chen, Lin, Ren, Lu and Zhou, *Self-Critical Attention Learning for Person Re-Identification*,
ICCV 2019 (doi:10.1109/ICCV.2019.00973).  An attention module is usually trained only
through the task's loss, a weak and indirect signal.  Here an *agent* produces the attention
``A = A(X | theta)`` from features ``X``, and a *critic* ``V = C(X, A | phi)`` estimates how good
that map is.  The quality measured is the *gain* of the attended features over the plain
ones, a quantity the agent cannot differentiate directly; as in actor-critic reinforcement
learning:

    critic:  min_phi (C(X, A) - R)^2,           R = p(y | attended) - p(y | plain)   (the gain)
    agent:   max_theta C(X, A(X | theta))       (the critic's parameters held fixed)

The agent's gradient flows through the critic's input ``A`` (the critic is a learned,
differentiable model of the reward), not through a sampled action.  Our simplifications of
the paper's re-identification set-up: a spatial agent only, a single convolutional critic,
and the reward on a classifier's probability of the true class (:func:`attention_gain`).

Recording: :class:`SelfCriticAttention` emits its map ``(B, 1, H, W)``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from attnlib._checks import check_feature_map, check_rank, shape_str
from attnlib.record import emit

__all__ = [
    "SelfCriticLosses",
    "attention_gain",
    "AttentionCritic",
    "SelfCriticAttention",
    "self_critic_losses",
]


class SelfCriticLosses(NamedTuple):
    """The two terms of :func:`self_critic_losses` (scalars) and the critic's scores ``(B,)``."""

    critic: Tensor  #: regression of the critic's score on the reward (trains ``phi`` only)
    agent: Tensor  #: ``-mean C(X, A)`` with ``phi`` frozen (trains ``theta``, and what produced ``X`` and ``A``)
    value: Tensor  #: ``(B,)`` the critic's scores, detached


def attention_gain(attended_logits: Tensor, plain_logits: Tensor, targets: Tensor) -> Tensor:
    """``R = p(y | attended) - p(y | plain)`` ``(B,)``, detached: how much the attention helped.

    Args:
        attended_logits, plain_logits: ``(B, K)`` class scores with and without the attention.
        targets: ``(B,)`` class indices.
    """
    check_rank(attended_logits, "attended_logits", 2, "(B, K)")
    if plain_logits.shape != attended_logits.shape:
        raise ValueError(
            f"plain_logits must have the shape of attended_logits {shape_str(attended_logits.shape)}; "
            f"got {shape_str(plain_logits.shape)}"
        )
    check_rank(targets, "targets", 1, "(B,)")
    y = targets[:, None]  # (B, 1)
    gain = attended_logits.softmax(-1).gather(1, y) - plain_logits.softmax(-1).gather(1, y)  # (B, 1)
    return gain.squeeze(1).detach()  # (B,)


class AttentionCritic(nn.Module):
    """``C(X, A)``: a convolution over the features stacked with the map, pooled to one score.

    Shapes: ``x`` ``(B, C, H, W)``, ``attention`` ``(B, 1, H, W)`` -> ``(B,)``.
    """

    def __init__(self, channels: int, hidden_channels: int = 16) -> None:
        super().__init__()
        self.channels = channels
        self.conv = nn.Conv2d(channels + 1, hidden_channels, 3, padding=1)
        self.out = nn.Linear(2 * hidden_channels, 1)

    def forward(self, x: Tensor, attention: Tensor) -> Tensor:
        h = F.relu(self.conv(torch.cat([x, attention], dim=1)))  # (B, C + 1, H, W) -> (B, hidden, H, W)
        pooled = torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=1)  # (B, 2 hidden)
        return self.out(pooled).squeeze(-1)  # (B,)


class SelfCriticAttention(nn.Module):
    """A spatial attention agent with its critic (Chen et al., 2019).

    Shapes:
        ``x`` ``(B, C, H, W)`` -> ``x * A`` ``(B, C, H, W)``, with ``A = sigmoid(conv(relu(conv(x))))``
        ``(B, 1, H, W)``, emitted and kept as ``last_map`` (with its graph, for :func:`self_critic_losses`).

    Args:
        channels: ``C``.
        hidden_channels: width of the agent's and the critic's convolutions.

    Raises:
        ValueError: on a call, if ``x`` is not a floating-point ``(B, C, H, W)`` map.
    """

    def __init__(self, channels: int, hidden_channels: int = 16) -> None:
        super().__init__()
        self.channels = channels
        self.agent = nn.Sequential(
            nn.Conv2d(channels, hidden_channels, 3, padding=1), nn.ReLU(), nn.Conv2d(hidden_channels, 1, 3, padding=1)
        )
        self.critic = AttentionCritic(channels, hidden_channels)
        self.last_map = torch.zeros(0)

    def attention(self, x: Tensor) -> Tensor:
        """``A`` ``(B, 1, H, W)`` in ``(0, 1)``."""
        check_feature_map(x, "x", self.channels)
        return torch.sigmoid(self.agent(x))  # (B, 1, H, W)

    def forward(self, x: Tensor) -> Tensor:
        a = self.attention(x)  # (B, 1, H, W)
        emit(self, a)
        self.last_map = a
        return x * a  # (B, C, H, W)


def self_critic_losses(critic: AttentionCritic, x: Tensor, attention: Tensor, reward: Tensor) -> SelfCriticLosses:
    """The critic's regression loss and the agent's loss ``-mean C(X, A)`` (module docstring).

    The critic's loss sees ``x`` and ``attention`` detached, so it trains the critic alone; the
    agent's loss calls the critic with detached copies of its parameters, so it trains what
    produced ``attention`` (and ``x``) and leaves the critic alone.

    Args:
        critic: the :class:`AttentionCritic`.
        x: ``(B, C, H, W)``.
        attention: ``(B, 1, H, W)``.
        reward: ``(B,)`` (e.g. :func:`attention_gain`).
    """
    check_feature_map(x, "x")
    expected = (x.shape[0], 1, *x.shape[2:])
    if tuple(attention.shape) != expected:
        raise ValueError(f"attention must have shape {shape_str(expected)}; got {shape_str(attention.shape)}")
    check_rank(reward, "reward", 1, "(B,)")
    if reward.shape[0] != x.shape[0]:
        raise ValueError(f"reward must have shape ({x.shape[0]},); got {shape_str(reward.shape)}")
    value = critic(x.detach(), attention.detach())  # (B,)
    critic_loss = F.mse_loss(value, reward.detach())
    frozen = {name: p.detach() for name, p in critic.named_parameters()}
    agent_value = functional_call(critic, frozen, (x, attention))  # (B,), no gradient to the critic
    return SelfCriticLosses(critic_loss, -agent_value.mean(), value.detach())
