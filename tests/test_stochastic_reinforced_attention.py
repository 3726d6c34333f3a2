"""attnlib.stochastic.reinforced_attention: Bernoulli gates, their REINFORCE gradient, the module."""

from __future__ import annotations

import pytest
import torch

from attnlib import record_attention
from attnlib.hard import reinforce_loss
from attnlib.stochastic import (
    ReinforcedAttention,
    bernoulli_log_prob,
    expected_gate_gradient,
    gate_score_samples,
    keep_share,
)

TARGET = torch.tensor([1.0, 0.0, 1.0])


def reward(masks: torch.Tensor) -> torch.Tensor:
    return -(masks - TARGET).abs().sum(-1) + 0.5 * masks[..., 0] * masks[..., 1]  # (M,), not separable


def test_log_prob_by_hand():
    logits = torch.tensor([0.0, 2.0])
    gates = torch.tensor([1.0, 0.0])
    expected = torch.log(torch.tensor(0.5)) + torch.log(1 - torch.sigmoid(torch.tensor(2.0)))
    assert torch.isclose(bernoulli_log_prob(logits, gates), expected)


def test_exact_gradient_matches_finite_differences():
    logits = torch.tensor([0.3, -0.5, 1.0], dtype=torch.float64)
    grad = expected_gate_gradient(logits, reward)

    def expected(g: torch.Tensor) -> torch.Tensor:
        masks = torch.tensor(
            [[a, b, c] for a in (0.0, 1.0) for b in (0.0, 1.0) for c in (0.0, 1.0)], dtype=torch.float64
        )
        return (bernoulli_log_prob(g.expand_as(masks), masks).exp() * reward(masks)).sum()

    eps = 1e-6
    fd = torch.stack(
        [
            (expected(logits + eps * e) - expected(logits - eps * e)) / (2 * eps)
            for e in torch.eye(3, dtype=torch.float64)
        ]
    )
    assert torch.allclose(grad, fd, atol=1e-6)


@pytest.mark.parametrize("baseline", [None, -1.0])
def test_score_function_mean_is_the_exact_gradient(baseline):
    logits = torch.tensor([0.3, -0.5, 1.0], dtype=torch.float64)
    samples = gate_score_samples(logits, reward, 200000, baseline=baseline, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(samples.mean(0), expected_gate_gradient(logits, reward), atol=0.01)


def test_a_baseline_reduces_the_variance():
    logits = torch.tensor([0.3, -0.5, 1.0], dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    plain = gate_score_samples(logits, reward, 20000, generator=g).var(0).sum()
    based = gate_score_samples(logits, reward, 20000, baseline=-1.0, generator=g).var(0).sum()
    assert based < 0.5 * plain, (based, plain)


def test_module_surrogate_gradient_through_attnlib_hard():
    """reinforce_loss on the module's log_prob, averaged, gives the exact gradient w.r.t. the logits."""
    torch.manual_seed(0)
    attn = ReinforcedAttention(2, 2, hidden_size=4)
    query, keys = torch.randn(1, 2), torch.randn(1, 3, 2)
    values = torch.randn(1, 3, 5)
    logits = attn.gate_logits(query, keys)[0].detach().double()
    exact = expected_gate_gradient(logits, reward)
    n = 20000
    out = attn(
        query.expand(n, 2), keys.expand(n, 3, 2), values.expand(n, 3, 5), generator=torch.Generator().manual_seed(0)
    )
    g = attn.gate_logits(query.expand(n, 2), keys.expand(n, 3, 2))
    loss = reinforce_loss(bernoulli_log_prob(g, out.gates), reward(out.gates.double()).float())
    (grad,) = torch.autograd.grad(loss, g)
    assert torch.allclose(-grad.sum(0).double(), exact, atol=0.03), (-grad.sum(0), exact)


def test_module_shapes_output_is_the_mean_of_kept_values_and_recorded():
    torch.manual_seed(0)
    attn = ReinforcedAttention(4, 3)
    q, k, v = torch.randn(6, 4), torch.randn(6, 5, 3), torch.randn(6, 5, 2)
    with record_attention(attn) as maps:
        out = attn(q, k, v, generator=torch.Generator().manual_seed(0))
    assert out.output.shape == (6, 2) and out.gates.shape == (6, 5) and out.log_prob.shape == (6,)
    assert set(out.gates.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(maps.last(attn), out.gates)
    count = out.gates.sum(1, keepdim=True).clamp_min(1)
    assert torch.allclose(out.output, (out.gates[:, :, None] * v).sum(1) / count)
    attn.eval()
    assert torch.equal(attn(q, k, v).gates, (out.probs > 0.5).float())
    attn.train()
    summed = ReinforcedAttention(4, 3, pooling="sum")
    summed.load_state_dict(attn.state_dict())
    out_sum = summed(q, k, v, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out_sum.gates, out.gates)
    assert torch.allclose(out_sum.output, (out.gates[:, :, None] * v).sum(1))


def test_bad_input_errors():
    attn = ReinforcedAttention(4, 3)
    with pytest.raises(ValueError, match=r"query must be \(B, 4\) and keys \(B, S, 3\)"):
        attn(torch.randn(2, 4), torch.randn(2, 5, 4), torch.randn(2, 5, 2))
    with pytest.raises(ValueError, match=r"values must be \(B, S, Dv\)"):
        attn(torch.randn(2, 4), torch.randn(2, 5, 3), torch.randn(2, 4, 2))
    with pytest.raises(ValueError, match=r"pooling must be one of \('mean', 'sum', 'attention'\); got 'max'"):
        ReinforcedAttention(4, 3, pooling="max")
    with pytest.raises(ValueError, match="S <= 16"):
        expected_gate_gradient(torch.zeros(17), reward)
    with pytest.raises(ValueError, match="gates must have the shape of logits"):
        bernoulli_log_prob(torch.zeros(3), torch.zeros(4))


def test_attention_pooling_is_a_softmax_over_the_kept_positions_only():
    """ReSA's second stage: soft additive attention masked to the kept positions, learned by backpropagation."""
    torch.manual_seed(0)
    attn = ReinforcedAttention(4, 3, hidden_size=8, pooling="attention")
    q, k, v = torch.randn(64, 4), torch.randn(64, 5, 3), torch.randn(64, 5, 2)
    out = attn(q, k, v, generator=torch.Generator().manual_seed(0))
    assert out.weights is not None and out.weights.shape == (64, 5)
    soft = attn.soft
    assert soft is not None
    scores = soft["v"](torch.tanh(soft["q"](q)[:, None] + soft["k"](k))).squeeze(-1)  # (B, S), by hand
    kept_rows = out.gates.sum(1) > 0
    for b in torch.nonzero(kept_rows).flatten().tolist():
        idx = out.gates[b].bool()
        expected = torch.zeros(5)
        expected[idx] = torch.softmax(scores[b, idx], dim=0)
        assert torch.allclose(out.weights[b], expected, atol=1e-6)
        assert torch.allclose(out.output[b], expected @ v[b], atol=1e-6)
    assert (out.weights * (1 - out.gates)).abs().max() == 0  # nothing on a dropped position
    # The soft scorer learns by backpropagation through the output; the gate scorer only through log pi.
    out.output.square().sum().backward()
    assert soft["k"].weight.grad is not None and soft["k"].weight.grad.abs().sum() > 0
    assert attn.w_k.weight.grad is None
    attn.eval()
    with torch.no_grad():
        attn.v.bias.fill_(-100.0)  # every gate closed: the output is zero, not NaN
    closed = attn(q, k, v)
    assert closed.gates.sum() == 0 and torch.equal(closed.output, torch.zeros(64, 2))


def test_keep_share_is_the_fraction_kept():
    gates = torch.tensor([[1.0, 0.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]])
    assert torch.equal(keep_share(gates), torch.tensor([0.75, 0.0]))
    with pytest.raises(ValueError, match=r"gates must have exactly 2 dimensions"):
        keep_share(torch.zeros(4))
