"""attnlib.draw.vae: the plain variational auto-encoder DRAW is compared with."""

from __future__ import annotations

import pytest
import torch

from attnlib.draw import VAE, VAEConfig, bernoulli_nll, gaussian_kl, importance_log_likelihood, negative_elbo

pytestmark = pytest.mark.usefixtures("one_thread")


def test_shapes_and_reparameterisation():
    torch.manual_seed(0)
    model = VAE(VAEConfig(hidden_size=32, latent_size=5))
    x = torch.bernoulli(torch.rand(4, 1, 28, 28))
    noise = torch.randn(4, 5)
    out = model(x, noise)
    assert out.logits.shape == (4, 1, 28, 28) and out.mu.shape == out.logvar.shape == out.z.shape == (4, 5)
    assert torch.allclose(out.z, out.mu + (0.5 * out.logvar).exp() * noise)
    samples = model.generate(3, torch.Generator().manual_seed(0))
    assert samples.shape == (3, 1, 28, 28) and ((samples > 0) & (samples < 1)).all()
    assert torch.equal(samples, model.generate(3, torch.Generator().manual_seed(0)))


def test_training_lowers_the_bound_and_importance_sampling_is_tighter():
    torch.manual_seed(1)
    model = VAE(VAEConfig(height=4, width=4, hidden_size=16, latent_size=2))
    x = (torch.rand(64, 1, 4, 4) < torch.linspace(0.1, 0.9, 16).view(1, 1, 4, 4)).float()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(150):
        out = model(x)
        loss = negative_elbo(out.logits, x, out.mu, out.logvar).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 1.0, (losses[0], losses[-1])
    images = x[:8]
    with torch.no_grad():
        torch.manual_seed(2)
        repeated = images.repeat_interleave(2000, 0)  # (8 * 2000, 1, 4, 4)
        out = model(repeated)
        elbo = -(bernoulli_nll(out.logits, repeated) + gaussian_kl(out.mu, out.logvar)).view(8, 2000).mean(1)
    log_p = importance_log_likelihood(model, images, num_samples=2000)  # (8,)
    assert log_p.mean() >= elbo.mean() - 0.02, log_p - elbo


def test_bad_input():
    model = VAE(VAEConfig(hidden_size=8, latent_size=2))
    with pytest.raises(ValueError, match=r"x must have shape \(B, 1, 28, 28\); got \(2, 1, 27, 28\)"):
        model(torch.zeros(2, 1, 27, 28))
    with pytest.raises(ValueError, match="floating-point"):
        model(torch.zeros(2, 1, 28, 28, dtype=torch.uint8))
    with pytest.raises(ValueError, match="num_images must be >= 1"):
        model.generate(0)
