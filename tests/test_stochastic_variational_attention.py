"""attnlib.stochastic.variational_attention: the ELBO, its estimators and the two scorers."""

from __future__ import annotations

import pytest
import torch

from attnlib import record_attention
from attnlib.stochastic import VariationalAttention, categorical_kl, elbo_surrogate, gumbel_softmax_sample

F_VALUES = torch.tensor([-0.3, -2.0, -1.1], dtype=torch.float64)  # log p(y | z) of each alignment


def _tiny(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(1, 3, generator=g, dtype=torch.float64).requires_grad_(True)
    p = torch.randn(1, 3, generator=g, dtype=torch.float64)
    w = torch.randn(3, generator=g, dtype=torch.float64).requires_grad_(True)  # the predictor's parameter
    return q, p, w


def _log_lik(w: torch.Tensor):
    return lambda z: z @ (F_VALUES + w)  # (B, S) -> (B,): pathwise in w, through z for Gumbel


def _exact_gradient(q, p, w):
    loss = elbo_surrogate(q, p, _log_lik(w), estimator="exact").loss
    return torch.autograd.grad(loss, (q, w))


def test_exact_elbo_is_the_enumeration():
    q, p, w = _tiny()
    terms = elbo_surrogate(q, p, _log_lik(w), estimator="exact")
    probs = q.softmax(-1)
    expected = (probs * (F_VALUES + w)).sum() - (probs * (probs.log() - p.log_softmax(-1))).sum()
    assert torch.isclose(terms.elbo[0], expected.detach())
    assert torch.isclose(terms.loss, -expected)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_score_function_is_unbiased_exactly_over_every_outcome(seed):
    """E_z[grad of the surrogate] summed over the 3 outcomes equals the exact ELBO gradient."""
    q, p, w = _tiny(seed)
    exact_q, exact_w = _exact_gradient(q, p, w)
    probs = q.softmax(-1).detach()[0]
    mean_q, mean_w = torch.zeros_like(q), torch.zeros_like(w)
    for z in range(3):
        loss = elbo_surrogate(
            q,
            p,
            _log_lik(w),
            estimator="score_function",
            samples=torch.tensor([[z]]),
            baseline=torch.tensor([-1.0], dtype=torch.float64),
        ).loss
        g_q, g_w = torch.autograd.grad(loss, (q, w))
        mean_q += probs[z] * g_q
        mean_w += probs[z] * g_w
    assert torch.allclose(mean_q, exact_q, atol=1e-12), (mean_q, exact_q)
    assert torch.allclose(mean_w, exact_w, atol=1e-12)


def test_score_function_monte_carlo_with_leave_one_out_baseline():
    q, p, w = _tiny(3)
    exact_q, _ = _exact_gradient(q, p, w)
    g = torch.Generator().manual_seed(0)
    loss = elbo_surrogate(q, p, _log_lik(w), estimator="score_function", num_samples=20000, generator=g).loss
    (mc_q,) = torch.autograd.grad(loss, q)
    assert torch.allclose(mc_q, exact_q, atol=0.01), (mc_q, exact_q)


def test_without_the_score_term_the_gradient_would_be_wrong():
    """The check above can fail: the pathwise part alone gives no gradient to q."""
    q, p, w = _tiny()
    exact_q, _ = _exact_gradient(q, p, w)
    kl_only = torch.autograd.grad(categorical_kl(q, p).sum(), q)[0]
    assert (exact_q - kl_only).abs().max() > 1e-2


def test_gumbel_softmax_samples_on_the_simplex_and_low_temperature_near_one_hot():
    logits = torch.tensor([[0.5, 1.0, -1.0]]).expand(4000, 3)
    g = torch.Generator().manual_seed(0)
    soft = gumbel_softmax_sample(logits, tau=1.0, generator=g)
    assert torch.allclose(soft.sum(-1), torch.ones(4000)) and (soft >= 0).all()
    hard = gumbel_softmax_sample(logits, tau=0.01, generator=g)
    assert (hard.max(-1).values > 0.99).float().mean() > 0.95
    freq = torch.bincount(hard.argmax(-1), minlength=3).float() / 4000
    assert torch.allclose(freq, torch.softmax(logits[0], 0), atol=0.03), freq


def test_gumbel_gradient_near_exact_at_low_temperature_on_a_linear_likelihood():
    q, p, w = _tiny(1)
    exact_q, exact_w = _exact_gradient(q, p, w)
    g = torch.Generator().manual_seed(1)
    loss = elbo_surrogate(q, p, _log_lik(w), estimator="gumbel", num_samples=4000, tau=0.5, generator=g).loss
    g_q, g_w = torch.autograd.grad(loss, (q, w))
    assert torch.allclose(g_w, exact_w, atol=0.03)
    assert torch.allclose(g_q, exact_q, atol=0.1), (g_q, exact_q)


def test_categorical_kl_zero_for_equal_and_positive_otherwise():
    a = torch.tensor([[0.1, 2.0, -1.0]])
    assert categorical_kl(a, a + 3.0).abs().max() < 1e-6
    assert categorical_kl(a, torch.zeros(1, 3))[0] > 0
    masked = torch.tensor([[0.0, float("-inf"), 1.0]])
    assert torch.isfinite(categorical_kl(masked, torch.zeros(1, 3))).all()


def test_module_shapes_weights_on_the_simplex_and_recorded():
    torch.manual_seed(0)
    attn = VariationalAttention(4, 5, 6, 3)
    q, k, v, y = torch.randn(2, 4), torch.randn(2, 7, 5), torch.randn(2, 7, 6), torch.randn(2, 3)
    with record_attention(attn) as maps:
        ctx = attn(q, k, v)
    assert ctx.shape == (2, 6)
    weights = maps.last(attn)
    assert weights.shape == (2, 7) and torch.allclose(weights.sum(-1), torch.ones(2))
    assert torch.allclose(ctx, (weights[:, :, None] * v).sum(1), atol=1e-6)
    post = attn.posterior_logits(q, k, v, y)
    assert post.shape == (2, 7) and not torch.allclose(post, attn.prior_logits(q, k))


def test_bad_input_errors():
    attn = VariationalAttention(4, 5, 6, 3)
    with pytest.raises(ValueError, match=r"query must be \(B, 4\).*got query \(2, 3\)"):
        attn(torch.randn(2, 3), torch.randn(2, 7, 5), torch.randn(2, 7, 6))
    with pytest.raises(ValueError, match="estimator must be one of"):
        elbo_surrogate(torch.zeros(1, 3), torch.zeros(1, 3), lambda z: z.sum(-1), estimator="vimco")
    with pytest.raises(ValueError, match=r"p_logits must have the shape of q_logits \(1, 3\)"):
        categorical_kl(torch.zeros(1, 3), torch.zeros(1, 4))
    with pytest.raises(ValueError, match=r"samples must have shape \(num_samples, B\) = \(1, 1\)"):
        elbo_surrogate(torch.zeros(1, 3), torch.zeros(1, 3), lambda z: z.sum(-1), samples=torch.zeros(2, 1).long())
    with pytest.raises(ValueError, match="tau must be positive"):
        gumbel_softmax_sample(torch.zeros(3), tau=0.0)
