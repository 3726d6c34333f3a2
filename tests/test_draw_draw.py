"""attnlib.draw.draw: the DRAW recurrent VAE (Gregor et al. 2015)."""

from __future__ import annotations

import dataclasses
import itertools
import math

import pytest
import torch

import attnlib
from attnlib.draw import DRAW, DRAWConfig, bernoulli_nll, gaussian_kl, importance_log_likelihood, negative_elbo

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = dict(num_steps=3, encoder_size=16, decoder_size=16, latent_size=4)


def small(**overrides) -> DRAW:
    return DRAW(DRAWConfig(**{**SMALL, **overrides}))


def test_config_is_frozen_with_the_papers_defaults():
    config = DRAWConfig()
    assert (config.num_steps, config.read_n, config.write_n) == (64, 2, 5)
    assert (config.encoder_size, config.decoder_size, config.latent_size) == (256, 256, 100)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.num_steps = 3  # the dataclass is frozen


@pytest.mark.parametrize("attention", [True, False])
def test_shapes(attention):
    torch.manual_seed(0)
    model = small(read_attention=attention, write_attention=attention)
    x = torch.bernoulli(torch.rand(5, 1, 28, 28))
    out = model(x)
    assert out.logits.shape == (5, 1, 28, 28)
    assert out.canvases.shape == (5, 3, 1, 28, 28)
    assert torch.equal(out.canvases[:, -1], out.logits)
    for t in (out.mu, out.logvar, out.z, out.noise):
        assert t.shape == (5, 3, 4)
    assert model.generate(2, torch.Generator().manual_seed(0)).shape == (2, 3, 1, 28, 28)


def test_fresh_noise_at_every_step_and_reparameterisation():
    torch.manual_seed(1)
    model = small(num_steps=4)
    out = model(torch.bernoulli(torch.rand(3, 1, 28, 28)))
    for s, t in itertools.combinations(range(4), 2):
        assert not torch.allclose(out.noise[:, s], out.noise[:, t]), f"steps {s} and {t} share their noise"
    assert torch.allclose(out.z, out.mu + (0.5 * out.logvar).exp() * out.noise, atol=1e-6)


def test_given_noise_makes_it_deterministic():
    torch.manual_seed(2)
    model = small()
    x = torch.bernoulli(torch.rand(2, 1, 28, 28))
    noise = torch.randn(2, 3, 4)
    a, b = model(x, noise), model(x, noise)
    assert torch.equal(a.logits, b.logits) and torch.equal(a.noise, noise)


def test_canvas_accumulates_and_the_error_image_feeds_back():
    """The first step's canvas does not depend on x through the canvas; later reads see x - sigmoid(c)."""
    torch.manual_seed(3)
    model = small(read_attention=False, write_attention=False)
    x = torch.bernoulli(torch.rand(2, 1, 28, 28))
    noise = torch.zeros(2, 3, 4)
    out = model(x, noise)
    writes = torch.diff(out.canvases, dim=1, prepend=torch.zeros_like(out.canvases[:, :1]))  # (B, T, 1, H, W)
    assert torch.allclose(writes.sum(1), out.logits, atol=1e-5)


def test_gradients_reach_every_parameter():
    torch.manual_seed(4)
    model = small()
    x = torch.bernoulli(torch.rand(4, 1, 28, 28))
    out = model(x)
    negative_elbo(out.logits, x, out.mu, out.logvar).loss.backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing, missing


def test_windows_are_recorded_every_step():
    torch.manual_seed(5)
    model = small(num_steps=4)
    with torch.no_grad(), attnlib.record_attention(model) as maps:
        model(torch.bernoulli(torch.rand(2, 1, 28, 28)))
    assert maps.names() == ["read", "write"]
    assert maps.stacked("read", dim=1).shape == (2, 4, 5)
    assert maps.stacked("write", dim=1).shape == (2, 4, 5)
    with attnlib.record_attention(model) as maps:
        model.generate(3)
    assert maps.names() == ["write"] and len(maps["write"]) == 4


def test_sampling_from_the_prior_is_seeded():
    torch.manual_seed(6)
    model = small()
    a = model.generate(2, torch.Generator().manual_seed(0))
    b = model.generate(2, torch.Generator().manual_seed(0))
    c = model.generate(2, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert ((a > 0) & (a < 1)).all()


def test_the_loss_is_a_valid_bound_on_a_tiny_model():
    """On 2x2 binary images, enumerate all 16 and estimate p(x) by importance sampling.

    The estimates sum to one over the 16 images (the model is a distribution), and for each
    image the negative ELBO is at least -log p(x); so the exp(ELBO) sum to at most one.  A
    KL that comes out too small (a constant counted twice, a dropped term) breaks this.
    """
    torch.manual_seed(7)
    model = DRAW(
        DRAWConfig(height=2, width=2, num_steps=2, read_n=2, write_n=2, encoder_size=8, decoder_size=8, latent_size=3)
    ).double()
    images = torch.tensor(list(itertools.product([0.0, 1.0], repeat=4)), dtype=torch.float64).view(16, 1, 2, 2)
    samples = 4000
    log_p = importance_log_likelihood(model, images, num_samples=samples)  # (16,)
    assert log_p.exp().sum().item() == pytest.approx(1.0, abs=0.03), log_p.exp().sum()
    with torch.no_grad():
        repeated = images.repeat_interleave(samples, 0)  # (16 K, 1, 2, 2)
        out = model(repeated)
        per_sample = -(bernoulli_nll(out.logits, repeated) + gaussian_kl(out.mu, out.logvar)).view(16, samples)
    elbo = per_sample.mean(1)  # (16,) the ELBO of each image
    stderr = per_sample.std(1) / math.sqrt(samples)
    assert (elbo <= log_p + 3 * stderr + 0.01).all(), elbo - log_p
    assert elbo.exp().sum() <= 1.0, elbo.exp().sum()
    # the mean gap is a few tenths of a nat: a KL short by more than that would fail above
    assert 0.05 < (log_p - elbo).mean() < 1.0, (log_p - elbo).mean()


def test_bad_input():
    model = small()
    with pytest.raises(ValueError, match=r"x must have shape \(B, 1, 28, 28\); got \(2, 3, 28, 28\)"):
        model(torch.zeros(2, 3, 28, 28))
    with pytest.raises(ValueError, match=r"x must have exactly 4 dimensions \(B, 1, H, W\); got shape \(2, 28, 28\)"):
        model(torch.zeros(2, 28, 28))
    with pytest.raises(ValueError, match=r"noise must have shape \(B, T, Z\) = \(2, 3, 4\); got \(2, 4\)"):
        model(torch.zeros(2, 1, 28, 28), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="num_steps must be >= 1"):
        small(num_steps=0)
    with pytest.raises(ValueError, match="num_images must be >= 1"):
        model.generate(0)
    out = model(torch.full((2, 1, 28, 28), 0.3))
    with pytest.raises(ValueError, match="must be binary"):
        negative_elbo(out.logits, torch.full((2, 1, 28, 28), 0.3), out.mu, out.logvar)
    with pytest.raises(ValueError, match="num_samples must be >= 1"):
        importance_log_likelihood(model, torch.zeros(1, 1, 28, 28), 0)
