"""Reinforced attention: independent Bernoulli-sigmoid keep/drop gates, trained with REINFORCE.

The survey of Hassanin et al. (2024, arXiv:2204.07756) files this family under hard
attention.  Its source is Shen, Zhou, Long, Jiang, Wang and Zhang, *Reinforced Self-Attention
Network: a Hybrid of Hard and Soft Attention for Sequence Modeling*, IJCAI 2018
(arXiv:1801.10296, ReSA).  There, "reinforced sequence sampling" draws an independent
Bernoulli-sigmoid keep/drop decision per token (two such samplers, for the heads and the
dependents of the attention), a *soft* self-attention runs over the kept tokens only (the
softmax masked to them), both are trained jointly, the soft part by back-propagation and the
samplers by policy gradient on the task's reward, and a penalty on the share of kept tokens
keeps the selection sparse.  This module is a **simplified variant** of that design: one query
and one sampler.  With ``pooling="mean"`` (default) or ``"sum"`` there is no soft attention after
the selection, the kept values are pooled by their plain mean or sum, so the gates alone decide
the output.  ``pooling="attention"`` adds ReSA's second stage: a soft additive attention of the
query over the kept positions only (its softmax masked to them), ``c = sum_i w_i v_i`` with
``w = softmax_{i : m_i = 1}(s_i)``, trained by back-propagation while the gates learn by
REINFORCE.  No sparsity term is built in: ReSA's penalty on the share of kept positions is
subtracted from the reward by the caller (:func:`keep_share` gives it).  Each position ``i``
gets its own gate

    p_i = sigmoid(g_i),     m_i ~ Bernoulli(p_i),     c = sum_i m_i v_i / max(1, sum_i m_i)

(any number of positions may be kept, the kept values are averaged; ``pooling="sum"`` drops
the denominator; ``pooling="attention"`` weights them by the masked softmax above).  The draw has no
gradient; REINFORCE (Williams, 1992) estimates the gradient of the expected reward
``E_m[r(m)]`` through the log-probability of the gates actually drawn,

    log pi(m) = sum_i m_i log p_i + (1 - m_i) log(1 - p_i),
    grad E[r] = E[(r(m) - b) grad log pi(m)],   d log pi / d g_i = m_i - p_i,

for which :func:`attnlib.hard.reinforce.reinforce_loss` is the surrogate and
:class:`attnlib.hard.heads.BaselineNetwork` a learned baseline ``b``.  With few gates the exact
gradient is a sum over all ``2^S`` masks (:func:`expected_gate_gradient`), against which
the single-sample estimates (:func:`gate_score_samples`) can be checked and their variance
measured.

Recording: :class:`ReinforcedAttention` emits the gates it used, ``(B, S)`` of 0.0 / 1.0.
"""

from __future__ import annotations

import itertools
from typing import Callable, NamedTuple, Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnlib._checks import check_rank, shape_str
from attnlib.record import emit

__all__ = [
    "POOLINGS",
    "GateOutput",
    "bernoulli_log_prob",
    "keep_share",
    "expected_gate_gradient",
    "gate_score_samples",
    "ReinforcedAttention",
]

GateReward = Callable[[Tensor], Tensor]
POOLINGS: tuple[str, ...] = ("mean", "sum", "attention")


class GateOutput(NamedTuple):
    """What :class:`ReinforcedAttention` returns."""

    output: Tensor  #: ``(B, Dv)``: the mean (or sum) of the kept values (zero if none is kept)
    gates: Tensor  #: ``(B, S)``: the keep (1.0) / drop (0.0) decisions
    probs: Tensor  #: ``(B, S)``: ``p_i = sigmoid(g_i)``
    log_prob: Tensor  #: ``(B,)``: ``log pi(m)`` of the gates drawn (for :func:`attnlib.hard.reinforce.reinforce_loss`)
    weights: Optional[Tensor] = None  #: ``(B, S)``: the soft weights over the kept positions (``"attention"`` only)


def keep_share(gates: Tensor) -> Tensor:
    """The share of positions kept, ``sum_i m_i / S`` ``(B,)``: ReSA's sparsity penalty, to subtract from a reward.

    Args:
        gates: ``(B, S)`` of 0 / 1.
    """
    check_rank(gates, "gates", 2, "(B, S)")
    return gates.mean(dim=-1)


def bernoulli_log_prob(logits: Tensor, gates: Tensor) -> Tensor:
    """``sum_i m_i log p_i + (1 - m_i) log(1 - p_i)`` over the last axis, with ``p = sigmoid(logits)``.

    Args:
        logits: ``(..., S)``.
        gates: ``(..., S)`` of 0 / 1.

    Returns:
        ``(...)``.
    """
    if gates.shape != logits.shape:
        raise ValueError(f"gates must have the shape of logits {shape_str(logits.shape)}; got {shape_str(gates.shape)}")
    return -F.binary_cross_entropy_with_logits(logits, gates.to(logits.dtype), reduction="none").sum(dim=-1)


def _all_masks(s: int, dtype: torch.dtype) -> Tensor:
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=s)), dtype=dtype)  # (2^S, S)


def expected_gate_gradient(logits: Tensor, reward: GateReward) -> Tensor:
    """The exact ``grad_g E_{m ~ Bernoulli(sigmoid(g))}[r(m)]`` by summing over all ``2^S`` masks.

    Args:
        logits: ``(S,)`` with ``S <= 16``.
        reward: maps masks ``(M, S)`` to rewards ``(M,)``.

    Returns:
        ``(S,)``.
    """
    check_rank(logits, "logits", 1, "(S,)")
    if logits.shape[0] > 16:
        raise ValueError(f"exact enumeration needs S <= 16 gates; got S={logits.shape[0]}")
    g = logits.detach().clone().requires_grad_(True)
    masks = _all_masks(g.shape[0], g.dtype)  # (2^S, S)
    r = reward(masks).detach()  # (2^S,)
    expected = (bernoulli_log_prob(g.expand_as(masks), masks).exp() * r).sum()  # sum_m pi(m) r(m)
    (grad,) = torch.autograd.grad(expected, g)
    return grad


def gate_score_samples(
    logits: Tensor,
    reward: GateReward,
    num_samples: int,
    *,
    baseline: Union[float, Tensor, None] = None,
    generator: Optional[torch.Generator] = None,
) -> Tensor:
    """Single-sample REINFORCE estimates ``(r(m) - b)(m - p)`` of :func:`expected_gate_gradient`.

    Args:
        logits: ``(S,)``.
        reward: maps masks ``(N, S)`` to rewards ``(N,)``.
        num_samples: ``N``.
        baseline: a constant ``b`` (``None`` = 0).
        generator: for the draws.

    Returns:
        ``(N, S)``, one estimate per row.
    """
    check_rank(logits, "logits", 1, "(S,)")
    p = torch.sigmoid(logits.detach())  # (S,)
    masks = torch.bernoulli(p.expand(num_samples, -1), generator=generator)  # (N, S)
    b = 0.0 if baseline is None else baseline
    return (reward(masks) - b)[:, None] * (masks - p)  # (N, 1) * (N, S) -> (N, S)


class ReinforcedAttention(nn.Module):
    """Bernoulli-sigmoid gates over ``S`` positions, scored by an additive (Bahdanau-style) network.

    Shapes:
        ``query`` ``(B, Dq)``, ``keys`` ``(B, S, Dk)``, ``values`` ``(B, S, Dv)`` -> :class:`GateOutput`.

    Gate scores ``g_i = w^T tanh(W_q q + W_k k_i)``.  In training the gates are drawn; in
    evaluation they are ``p_i > 0.5`` unless ``sample_in_eval``.

    Args:
        query_size, key_size: ``Dq`` and ``Dk``.
        hidden_size: width of the scoring network.
        sample_in_eval: draw the gates in evaluation mode too.
        pooling: ``"mean"`` (default) or ``"sum"`` of the kept values, or ``"attention"``: a soft
            additive attention of the query over the kept positions (ReSA's second stage), with
            its own scorer ``s_i = u^T tanh(U_q q + U_k k_i)`` of width ``hidden_size``.

    Raises:
        ValueError: for an unknown ``pooling``; on a call, for mismatched shapes.
    """

    def __init__(
        self,
        query_size: int,
        key_size: int,
        hidden_size: int = 32,
        sample_in_eval: bool = False,
        pooling: str = "mean",
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}; got {pooling!r}")
        self.pooling = pooling
        self.query_size, self.key_size, self.sample_in_eval = query_size, key_size, sample_in_eval
        self.w_q = nn.Linear(query_size, hidden_size, bias=False)
        self.w_k = nn.Linear(key_size, hidden_size)
        self.v = nn.Linear(hidden_size, 1)
        self.soft: Optional[nn.ModuleDict] = None
        if pooling == "attention":
            self.soft = nn.ModuleDict(
                {
                    "q": nn.Linear(query_size, hidden_size, bias=False),
                    "k": nn.Linear(key_size, hidden_size),
                    "v": nn.Linear(hidden_size, 1),
                }
            )

    def gate_logits(self, query: Tensor, keys: Tensor) -> Tensor:
        """``g`` ``(B, S)``."""
        check_rank(query, "query", 2, "(B, Dq)")
        check_rank(keys, "keys", 3, "(B, S, Dk)")
        if query.shape[0] != keys.shape[0] or query.shape[1] != self.query_size or keys.shape[2] != self.key_size:
            raise ValueError(
                f"query must be (B, {self.query_size}) and keys (B, S, {self.key_size}); "
                f"got query {shape_str(query.shape)}, keys {shape_str(keys.shape)}"
            )
        hidden = torch.tanh(self.w_q(query)[:, None, :] + self.w_k(keys))  # (B, 1, H) + (B, S, H) -> (B, S, H)
        return self.v(hidden).squeeze(-1)  # (B, S)

    def forward(
        self, query: Tensor, keys: Tensor, values: Tensor, *, generator: Optional[torch.Generator] = None
    ) -> GateOutput:
        logits = self.gate_logits(query, keys)  # (B, S)
        check_rank(values, "values", 3, "(B, S, Dv)")
        if values.shape[:2] != keys.shape[:2]:
            raise ValueError(
                f"values must be (B, S, Dv) with (B, S) = {tuple(keys.shape[:2])}; got {shape_str(values.shape)}"
            )
        probs = torch.sigmoid(logits)  # (B, S)
        if self.training or self.sample_in_eval:
            gates = torch.bernoulli(probs.detach(), generator=generator)  # (B, S)
        else:
            gates = (probs > 0.5).to(probs.dtype)  # (B, S)
        emit(self, gates)
        log_prob = bernoulli_log_prob(logits, gates)  # (B,)
        if self.soft is not None:
            hidden = torch.tanh(self.soft["q"](query)[:, None, :] + self.soft["k"](keys))  # (B, S, H)
            scores = self.soft["v"](hidden).squeeze(-1)  # (B, S)
            none_kept = gates.sum(dim=1, keepdim=True) == 0  # (B, 1)
            scores = scores.masked_fill((gates == 0) & ~none_kept, float("-inf"))  # softmax over the kept only
            weights = torch.softmax(scores, dim=-1) * gates  # (B, S); all zero where nothing is kept
            output = (weights[:, :, None] * values).sum(dim=1)  # (B, S, 1) * (B, S, Dv) -> (B, Dv)
            return GateOutput(output, gates, probs, log_prob, weights)
        kept = (gates[:, :, None] * values).sum(dim=1)  # (B, S, 1) * (B, S, Dv) -> (B, Dv)
        output = kept / gates.sum(dim=1, keepdim=True).clamp_min(1.0) if self.pooling == "mean" else kept  # (B, Dv)
        return GateOutput(output, gates, probs, log_prob)
