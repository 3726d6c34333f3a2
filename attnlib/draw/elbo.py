"""The variational bound of DRAW and of a plain VAE, in nats per image, on binarised images.

Kingma and Welling, *Auto-Encoding Variational Bayes*, ICLR 2014 (arXiv:1312.6114), and
Gregor et al., *DRAW*, ICML 2015 (arXiv:1502.04623), eqs. 9 to 12.  For a binary image ``x``
of ``D`` pixels, decoder logits ``c`` (the final canvas), and Gaussian posteriors
``Q(z_t | ...) = N(mu_t, sigma_t^2)`` over ``Z`` latent dimensions at each of ``T`` steps::

    L^x = -log D(x | c) = sum_d BCE(sigmoid(c_d), x_d)                            (eq. 9)
    L^z = sum_t KL(N(mu_t, sigma_t^2) || N(0, I))
        = sum_t sum_{j=1..Z} 1/2 (mu_tj^2 + sigma_tj^2 - log sigma_tj^2 - 1)          (eq. 11)

and ``L = L^x + L^z >= -log p(x)`` (eq. 12).  The constant is ``-1/2`` for *every* latent
dimension at every step (``-T Z / 2`` in all).  A constant of ``-T/2``, one per step, makes
``L^z`` too large by ``T (Z - 1) / 2`` nats: still a bound, but a loose one that understates
the model.  A constant that is too negative (``-T Z``, say) makes ``L^z`` too small, and ``L``
is then no bound at all.  The Bernoulli likelihood is a probability only for
binary ``x``: grey-level MNIST gives a number that is not a bound on anything, so
:func:`bernoulli_nll` refuses it and :func:`binarize` makes binary images.

Binarisation here is *dynamic*: each pixel is 1 with probability its intensity, drawn
afresh from a seeded generator (a new draw every epoch in training; one fixed draw for a
test set).
"""

from __future__ import annotations

import math
from typing import NamedTuple, Optional

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from attnlib._checks import check_floating, shape_str

__all__ = [
    "ELBO",
    "binarize",
    "bernoulli_nll",
    "gaussian_kl",
    "gaussian_log_density",
    "check_binary",
    "negative_elbo",
    "importance_log_likelihood",
]


class ELBO(NamedTuple):
    """The negative ELBO and its two terms, each averaged over the batch, in nats per image."""

    loss: Tensor  #: ``L = L^x + L^z``, a scalar to minimise
    reconstruction: Tensor  #: ``L^x``
    kl: Tensor  #: ``L^z``


def binarize(images: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
    """Dynamic binarisation: pixel ``= 1`` with probability equal to its intensity.

    Args:
        images: uint8 in ``[0, 255]`` or float in ``[0, 1]``, any shape.
        generator: the draw (seed it for a fixed binarisation).

    Returns:
        float32 of the same shape, values in ``{0, 1}``.
    """
    probs = images.float().div(255) if images.dtype == torch.uint8 else images.float()
    if probs.numel() and (probs.min() < 0 or probs.max() > 1):
        raise ValueError(
            f"images must be uint8 or float in [0, 1]; got values in "
            f"[{probs.min().item():.3g}, {probs.max().item():.3g}]"
        )
    return torch.bernoulli(probs, generator=generator)


def check_binary(x: Tensor, name: str = "x") -> None:
    """Raise ``ValueError`` unless ``x`` is floating point with values in ``{0, 1}``."""
    check_floating(x, name)
    if not bool(((x == 0) | (x == 1)).all()):
        grey = int(((x != 0) & (x != 1)).sum())
        raise ValueError(
            f"{name} must be binary (values 0 or 1) for a Bernoulli likelihood; got {grey} "
            f"pixels with other values (binarise grey-level images with attnlib.draw.binarize)"
        )


def bernoulli_nll(logits: Tensor, x: Tensor) -> Tensor:
    """``-log D(x | c)``: the Bernoulli negative log-likelihood of binary ``x``, summed per image.

    Args:
        logits: ``(B, ...)`` the decoder's logits ``c``.
        x: ``(B, ...)`` binary, the same shape.

    Returns:
        ``(B,)`` nats.
    """
    if logits.shape != x.shape:
        raise ValueError(
            f"logits and x must have the same shape; got logits {shape_str(logits.shape)}, x {shape_str(x.shape)}"
        )
    check_binary(x)
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)  # (B,)


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """``KL(N(mu, exp(logvar)) || N(0, I))`` summed over every dimension but the first.

    Args:
        mu, logvar: ``(B, ...)``, e.g. ``(B, T, Z)``.

    Returns:
        ``(B,)`` nats: ``sum 1/2 (mu^2 + sigma^2 - log sigma^2 - 1)``, the ``-1/2`` once per dimension.
    """
    if mu.shape != logvar.shape:
        raise ValueError(
            f"mu and logvar must have the same shape; got {shape_str(mu.shape)} and {shape_str(logvar.shape)}"
        )
    return (0.5 * (mu.pow(2) + logvar.exp() - logvar - 1)).flatten(1).sum(1)  # (B,)


def gaussian_log_density(z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """``log N(z; mu, exp(logvar))`` summed over every dimension but the first, ``(B,)``."""
    per_dim = -0.5 * (math.log(2 * math.pi) + logvar + (z - mu).pow(2) / logvar.exp())
    return per_dim.flatten(1).sum(1)  # (B,)


def negative_elbo(logits: Tensor, x: Tensor, mu: Tensor, logvar: Tensor) -> ELBO:
    """``L = L^x + L^z`` averaged over the batch (eq. 12), for DRAW and the plain VAE alike.

    Args:
        logits: ``(B, ...)`` decoder logits (DRAW: the final canvas ``c_T``).
        x: ``(B, ...)`` binary images, the shape of ``logits``.
        mu, logvar: ``(B, T, Z)`` (DRAW) or ``(B, Z)`` (VAE), the posteriors' parameters.

    Returns:
        An :class:`ELBO` of scalars, nats per image.
    """
    reconstruction = bernoulli_nll(logits, x)  # (B,)
    kl = gaussian_kl(mu, logvar)  # (B,)
    return ELBO((reconstruction + kl).mean(), reconstruction.mean(), kl.mean())


@torch.no_grad()
def importance_log_likelihood(model: nn.Module, x: Tensor, num_samples: int, chunk: int = 256) -> Tensor:
    """``log p(x)`` estimated by importance sampling with the model's own posterior as proposal.

    ``log (1/K sum_k p(x | z_k) p(z_k) / q(z_k | x))`` with ``z_k ~ q`` (Burda et al.'s bound):
    for every ``K`` its expectation lies between the ELBO (``K = 1``) and ``log p(x)``, and it
    tends to ``log p(x)`` as ``K`` grows.  For DRAW the ``T`` latents are drawn in sequence, each
    from ``Q(z_t | h_enc_t)``, which is a valid proposal for the joint ``z_{1:T}``.

    Args:
        model: returns an output with ``logits`` (like ``x``), ``mu``, ``logvar`` and ``z``
            (``(B, T, Z)`` or ``(B, Z)``): :class:`~attnlib.draw.draw.DRAW` or :class:`~attnlib.draw.vae.VAE`.
        x: ``(B, C, H, W)`` binary.
        num_samples: ``K``.
        chunk: images' samples per forward pass.

    Returns:
        ``(B,)`` nats (log-likelihoods, so negative).
    """
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1; got {num_samples}")
    check_binary(x)
    estimates = []
    for image in x:
        weights = []
        for start in range(0, num_samples, chunk):
            k = min(chunk, num_samples - start)
            xk = image.expand(k, *image.shape)  # (k, C, H, W)
            out = model(xk)
            prior = gaussian_log_density(out.z, torch.zeros_like(out.z), torch.zeros_like(out.z))  # (k,)
            posterior = gaussian_log_density(out.z, out.mu, out.logvar)  # (k,)
            weights.append(-bernoulli_nll(out.logits, xk) + prior - posterior)  # (k,)
        log_w = torch.cat(weights)  # (K,)
        estimates.append(torch.logsumexp(log_w, 0) - math.log(num_samples))
    return torch.stack(estimates)  # (B,)
