"""A plain variational auto-encoder: the one-shot baseline DRAW is compared with.

Kingma and Welling, *Auto-Encoding Variational Bayes*, ICLR 2014 (arXiv:1312.6114): an MLP
encoder gives ``(mu, log sigma^2) = enc(x)``, one latent ``z = mu + sigma eps`` with
``eps ~ N(0, I)``, and an MLP decoder gives Bernoulli logits ``dec(z)`` of every pixel at
once.  The loss is the same negative ELBO as DRAW's
(:func:`~attnlib.draw.elbo.negative_elbo`), with ``T = 1``.  One hidden layer of ``tanh``
units on each side, as in the paper's MNIST experiments; the sizes are the config's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Optional

import torch
from torch import Tensor, nn

from attnlib._checks import check_floating, check_rank, shape_str

__all__ = ["VAEConfig", "VAEOutput", "VAE"]


@dataclass(frozen=True)
class VAEConfig:
    """Hyperparameters of :class:`VAE` (defaults: an MNIST model of Kingma and Welling's shape)."""

    height: int = 28  # MNIST
    width: int = 28  # MNIST
    hidden_size: int = 500  # one hidden layer per side, the paper's MNIST size
    latent_size: int = 20  # the paper's figures go up to 200; 20 is a common MNIST choice


class VAEOutput(NamedTuple):
    """What :meth:`VAE.forward` returns."""

    logits: Tensor  #: ``(B, 1, H, W)`` Bernoulli logits
    mu: Tensor  #: ``(B, Z)``
    logvar: Tensor  #: ``(B, Z)``
    z: Tensor  #: ``(B, Z)``


class VAE(nn.Module):
    """Encoder MLP, Gaussian latent, decoder MLP.

    Args:
        config: a :class:`VAEConfig`.
    """

    def __init__(self, config: VAEConfig = VAEConfig()) -> None:
        super().__init__()
        self.config = c = config
        pixels = c.height * c.width
        self.encoder = nn.Sequential(
            nn.Linear(pixels, c.hidden_size), nn.Tanh(), nn.Linear(c.hidden_size, 2 * c.latent_size)
        )
        self.decoder = nn.Sequential(
            nn.Linear(c.latent_size, c.hidden_size), nn.Tanh(), nn.Linear(c.hidden_size, pixels)
        )

    def forward(self, x: Tensor, noise: Optional[Tensor] = None) -> VAEOutput:
        """Encode ``x`` ``(B, 1, H, W)`` and decode one sample of ``z``; ``noise`` ``(B, Z)`` fixes ``eps``."""
        c = self.config
        check_rank(x, "x", 4, "(B, 1, H, W)")
        check_floating(x, "x")
        if tuple(x.shape[1:]) != (1, c.height, c.width):
            raise ValueError(f"x must have shape (B, 1, {c.height}, {c.width}); got {shape_str(x.shape)}")
        mu, logvar = self.encoder(x.flatten(1)).chunk(2, dim=1)  # (B, Z) each
        eps = torch.randn_like(mu) if noise is None else noise  # (B, Z)
        z = mu + (0.5 * logvar).exp() * eps  # (B, Z)
        logits = self.decoder(z).view(-1, 1, c.height, c.width)  # (B, 1, H, W)
        return VAEOutput(logits, mu, logvar, z)

    @torch.no_grad()
    def generate(self, num_images: int, generator: Optional[torch.Generator] = None) -> Tensor:
        """Samples' Bernoulli means ``sigmoid(dec(z))``, ``z ~ N(0, I)``: ``(n, 1, H, W)``."""
        if num_images < 1:
            raise ValueError(f"num_images must be >= 1; got {num_images}")
        c = self.config
        device = next(self.parameters()).device
        z = torch.randn(num_images, c.latent_size, generator=generator).to(device)  # (n, Z)
        return torch.sigmoid(self.decoder(z)).view(-1, 1, c.height, c.width)  # (n, 1, H, W)
