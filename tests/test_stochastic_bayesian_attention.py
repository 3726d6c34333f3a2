"""attnlib.stochastic.bayesian_attention: sampled weights, their mean, the KL terms, the module."""

from __future__ import annotations

import math

import pytest
import torch

from attnlib import record_attention
from attnlib.stochastic import BayesianAttention, lognormal_kl, sample_log_weights, weibull_gamma_kl


@pytest.mark.parametrize("distribution", ["lognormal", "weibull"])
def test_unnormalised_weights_have_mean_exp_phi(distribution):
    phi = torch.tensor([-1.0, 0.0, 0.7], dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    s = sample_log_weights(phi.expand(200000, 3), distribution, 0.5, generator=g).exp()
    assert torch.allclose(s.mean(0), phi.exp(), rtol=0.02), (s.mean(0), phi.exp())


@pytest.mark.parametrize("distribution", ["lognormal", "weibull"])
def test_small_spread_gives_softmax(distribution):
    phi = torch.randn(4, 5)
    w = torch.softmax(sample_log_weights(phi, distribution, 1e-4, generator=torch.Generator().manual_seed(0)), -1)
    assert torch.allclose(w, torch.softmax(phi, -1), atol=1e-3)


def test_weibull_gamma_kl_matches_monte_carlo():
    k, lam, alpha, beta = 2.0, 1.5, 0.8, 1.3
    weibull = torch.distributions.Weibull(torch.tensor(lam, dtype=torch.float64), torch.tensor(k, dtype=torch.float64))
    gamma = torch.distributions.Gamma(torch.tensor(alpha, dtype=torch.float64), torch.tensor(beta, dtype=torch.float64))
    torch.manual_seed(0)
    x = weibull.sample((400000,))
    mc = (weibull.log_prob(x) - gamma.log_prob(x)).mean()
    closed = weibull_gamma_kl(
        k, torch.tensor(math.log(lam), dtype=torch.float64), torch.tensor(alpha, dtype=torch.float64), beta
    )
    assert abs(closed.item() - mc.item()) < 0.01, (closed, mc)


def test_lognormal_kl_is_that_of_the_normals():
    mu_q, mu_p = torch.tensor([0.3]), torch.tensor([-0.2])
    expected = torch.distributions.kl_divergence(
        torch.distributions.Normal(mu_q, 0.5), torch.distributions.Normal(mu_p, 1.2)
    )
    assert torch.allclose(lognormal_kl(mu_q, 0.5, mu_p, 1.2), expected)


@pytest.mark.parametrize("distribution", ["lognormal", "weibull"])
def test_module_shapes_simplex_kl_and_recording(distribution):
    torch.manual_seed(0)
    attn = BayesianAttention(8, distribution=distribution)
    q, k, v = torch.randn(2, 3, 8), torch.randn(2, 5, 8), torch.randn(2, 5, 4)
    with record_attention(attn) as maps:
        out = attn(q, k, v, generator=torch.Generator().manual_seed(1))
    assert out.output.shape == (2, 3, 4) and out.weights.shape == (2, 3, 5) and out.kl.shape == (2,)
    assert torch.allclose(out.weights.sum(-1), torch.ones(2, 3)) and (out.weights > 0).all()
    assert torch.equal(maps.last(attn), out.weights)
    assert torch.isfinite(out.kl).all()
    out.kl.sum().backward()
    assert attn.prior[0].weight.grad is not None  # the prior learns through the KL


def test_eval_is_softmax_attention_and_sampling_on_request():
    torch.manual_seed(0)
    attn = BayesianAttention(8).eval()
    q, k, v = torch.randn(2, 3, 8), torch.randn(2, 5, 8), torch.randn(2, 5, 4)
    out = attn(q, k, v)
    ref = torch.nn.functional.scaled_dot_product_attention(q, k, v)
    assert torch.allclose(out.output, ref, atol=1e-6) and torch.equal(out.kl, torch.zeros(2))
    attn.sample_in_eval = True
    a = attn(q, k, v, generator=torch.Generator().manual_seed(0)).weights
    b = attn(q, k, v, generator=torch.Generator().manual_seed(1)).weights
    assert not torch.allclose(a, b)


def test_bad_input_errors():
    with pytest.raises(ValueError, match="distribution must be one of"):
        BayesianAttention(4, distribution="gamma")
    with pytest.raises(ValueError, match="must be positive"):
        BayesianAttention(4, spread=0.0)
    attn = BayesianAttention(4)
    with pytest.raises(ValueError, match="feature size E"):
        attn(torch.randn(1, 2, 4), torch.randn(1, 3, 5), torch.randn(1, 3, 4))
    with pytest.raises(ValueError, match=r"embed_dim = 4"):
        attn(torch.randn(1, 2, 6), torch.randn(1, 3, 6), torch.randn(1, 3, 4))
    with pytest.raises(ValueError, match="spread must be positive"):
        sample_log_weights(torch.zeros(3), "lognormal", -1.0)


@pytest.mark.parametrize("distribution", ["lognormal", "weibull"])
def test_draws_are_a_function_of_the_mean_weights_alone(distribution):
    """With a fixed spread the sampled weights depend on phi only through softmax(phi)."""
    torch.manual_seed(0)
    phi = 3 * torch.randn(4, 2, 6, dtype=torch.float64)
    shifted = phi + 5 * torch.randn(4, 2, 1, dtype=torch.float64)  # another phi with the same softmax
    draw = lambda p: torch.softmax(  # noqa: E731
        sample_log_weights(p, distribution, 0.7, generator=torch.Generator().manual_seed(1)), dim=-1
    )
    from_mean = draw(torch.log_softmax(phi, dim=-1))
    assert torch.allclose(draw(phi), from_mean, atol=1e-10)
    assert torch.allclose(draw(shifted), from_mean, atol=1e-10)
    assert not torch.allclose(draw(phi), torch.softmax(phi, dim=-1), atol=1e-3)  # the draws do move


def test_kl_pulls_the_scores_towards_the_prior():
    """Fixed spreads: the KL is least at phi = psi + (s^2 - s_p^2) / 2 (log-normal), psi - log beta (Weibull)."""
    phi = torch.linspace(-3, 3, 601, dtype=torch.float64)
    psi, s, sp = torch.tensor(0.4, dtype=torch.float64), 0.5, 1.0
    kl = lognormal_kl(phi - s**2 / 2, s, psi - sp**2 / 2, sp)
    assert abs(phi[kl.argmin()].item() - (0.4 + (s**2 - sp**2) / 2)) < 0.011
    k, beta = 2.0, 0.5
    kl_w = weibull_gamma_kl(k, phi - math.lgamma(1 + 1 / k), psi.exp().expand_as(phi), beta)
    assert abs(phi[kl_w.argmin()].item() - (0.4 - math.log(beta))) < 0.011


@pytest.mark.parametrize("distribution", ["lognormal", "weibull"])
def test_kl_sees_weights_not_scores_and_the_prior_is_normalised_over_the_keys(distribution):
    """As in the authors' code (zhougroup/BAM): the posterior is parameterised by log softmax(phi) and
    the contextual prior by log softmax(psi), so a constant added to every score changes nothing."""
    torch.manual_seed(0)
    attn = BayesianAttention(6, distribution=distribution, spread=0.4).double().train()
    q, k, v = (
        torch.randn(2, 3, 6, dtype=torch.float64),
        torch.randn(2, 5, 6, dtype=torch.float64),
        torch.randn(2, 5, 4, dtype=torch.float64),
    )
    out = attn(q, k, v, generator=torch.Generator().manual_seed(1))
    psi = attn.prior_scores(k)  # (B, S)
    assert torch.allclose(psi.exp().sum(-1), torch.ones(2, dtype=torch.float64))
    phi = q @ k.transpose(-2, -1) / math.sqrt(6)  # (B, L, S)
    log_w = torch.log_softmax(phi, -1)
    if distribution == "lognormal":
        expected = lognormal_kl(log_w - 0.4**2 / 2, 0.4, psi[:, None, :], attn.prior_spread)
    else:
        kk = 1 / 0.4
        expected = weibull_gamma_kl(
            kk, log_w - math.lgamma(1 + 1 / kk), attn.prior_rate * psi.exp()[:, None, :].expand_as(phi), attn.prior_rate
        )
    assert torch.allclose(out.kl, expected.flatten(1).sum(1))
    # a constant added to every score of the prior network's output leaves the prior unchanged
    with torch.no_grad():
        attn.prior[-1].bias += 3.0
    assert torch.allclose(attn.prior_scores(k), psi)
