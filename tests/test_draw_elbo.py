"""attnlib.draw.elbo: binarisation, the Bernoulli likelihood, the Gaussian KL and the bound."""

from __future__ import annotations

import math

import pytest
import torch

from attnlib.draw import ELBO, bernoulli_nll, binarize, check_binary, gaussian_kl, gaussian_log_density, negative_elbo

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("shape", [(3, 4), (2, 5, 3)])
def test_kl_matches_a_monte_carlo_estimate(shape):
    """KL(q || p) = E_q[log q(z) - log p(z)], estimated from 400,000 samples of q."""
    gen = torch.Generator().manual_seed(0)
    mu = torch.randn(*shape, generator=gen, dtype=torch.float64)
    logvar = torch.randn(*shape, generator=gen, dtype=torch.float64) * 0.5
    samples = 400_000
    z = mu + (0.5 * logvar).exp() * torch.randn(samples, *shape, generator=gen, dtype=torch.float64)
    flat = z.reshape(samples * shape[0], *shape[1:])
    mus, logvars = mu.repeat(samples, *([1] * (len(shape) - 1))), logvar.repeat(samples, *([1] * (len(shape) - 1)))
    log_q = gaussian_log_density(flat, mus, logvars).view(samples, shape[0])
    log_p = gaussian_log_density(flat, torch.zeros_like(flat), torch.zeros_like(flat)).view(samples, shape[0])
    estimate = (log_q - log_p).mean(0)
    stderr = (log_q - log_p).std(0) / math.sqrt(samples)
    exact = gaussian_kl(mu, logvar)
    assert exact.shape == (shape[0],)
    assert ((estimate - exact).abs() < 5 * stderr + 1e-6).all(), (estimate, exact, stderr)


@pytest.mark.parametrize("dims", [1, 10, 100])
def test_kl_constant_is_per_dimension(dims):
    """The prior itself has KL 0 whatever the number of dimensions (the -1/2 once per dimension)."""
    kl = gaussian_kl(torch.zeros(2, 64, dims), torch.zeros(2, 64, dims))
    assert torch.equal(kl, torch.zeros(2))
    one = gaussian_kl(torch.ones(1, 3, dims), torch.zeros(1, 3, dims))  # 1/2 mu^2 per dimension and step
    assert one.item() == pytest.approx(0.5 * 3 * dims)


def test_gaussian_log_density_is_normal_log_prob():
    z, mu, logvar = torch.randn(4, 3), torch.randn(4, 3), torch.randn(4, 3)
    by_hand = (-0.5 * (math.log(2 * math.pi) + logvar + (z - mu) ** 2 / logvar.exp())).sum(1)
    assert torch.allclose(gaussian_log_density(z, mu, logvar), by_hand)


def test_bernoulli_nll_by_hand():
    logits = torch.tensor([[[0.0, 2.0], [-1.0, 3.0]]])
    x = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    p = torch.sigmoid(logits)
    by_hand = -(x * p.log() + (1 - x) * (1 - p).log()).sum()
    assert bernoulli_nll(logits, x).item() == pytest.approx(by_hand.item(), rel=1e-6)


def test_grey_level_images_are_refused():
    grey = torch.full((2, 1, 4, 4), 0.5)
    with pytest.raises(ValueError, match="must be binary .* got 32 pixels"):
        bernoulli_nll(torch.zeros_like(grey), grey)
    with pytest.raises(ValueError, match="floating-point"):
        check_binary(torch.ones(2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="same shape"):
        bernoulli_nll(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="same shape"):
        gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 4))


def test_binarize_is_dynamic_seeded_and_unbiased():
    images = torch.tensor([0, 64, 128, 255], dtype=torch.uint8).repeat(20_000, 1)
    first = binarize(images, torch.Generator().manual_seed(0))
    again = binarize(images, torch.Generator().manual_seed(0))
    other = binarize(images, torch.Generator().manual_seed(1))
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert set(first.unique().tolist()) == {0.0, 1.0} and first.dtype == torch.float32
    assert torch.allclose(first.mean(0), images[0].float() / 255, atol=0.015)
    with pytest.raises(ValueError, match=r"uint8 or float in \[0, 1\]"):
        binarize(torch.tensor([0.5, 1.5]))


def test_negative_elbo_adds_the_terms_per_image_and_averages():
    x = torch.tensor([[[[1.0, 0.0]]], [[[0.0, 0.0]]]])
    logits = torch.zeros_like(x)
    mu, logvar = torch.ones(2, 3, 4), torch.zeros(2, 3, 4)
    out = negative_elbo(logits, x, mu, logvar)
    assert isinstance(out, ELBO)
    assert out.reconstruction.item() == pytest.approx(2 * math.log(2))
    assert out.kl.item() == pytest.approx(0.5 * 12)
    assert out.loss.item() == pytest.approx(2 * math.log(2) + 6)
