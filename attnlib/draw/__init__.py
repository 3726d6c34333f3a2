"""DRAW (Gregor et al., 2015): differentiable Gaussian read and write attention.

One mechanism per module file; the public names are re-exported here.

- :mod:`~attnlib.draw.filterbank`: the Gaussian filterbank, read and write with and without attention;
- :mod:`~attnlib.draw.elbo`: binarisation, the Bernoulli likelihood, the KL and the bound;
- :mod:`~attnlib.draw.draw`: the DRAW recurrent variational auto-encoder;
- :mod:`~attnlib.draw.vae`: a plain variational auto-encoder (Kingma and Welling, 2014);
- :mod:`~attnlib.draw.read_classifier`: a classifier that reads with DRAW's glimpses.
"""

from __future__ import annotations

from .draw import DRAW, DRAWConfig, DRAWOutput
from .elbo import (
    ELBO,
    bernoulli_nll,
    binarize,
    check_binary,
    gaussian_kl,
    gaussian_log_density,
    importance_log_likelihood,
    negative_elbo,
)
from .filterbank import (
    AttentionWindow,
    ReadAttention,
    ReadGlimpse,
    ReadNoAttention,
    Window,
    WriteAttention,
    WriteNoAttention,
    filterbank,
    read_glimpse,
    window_boxes,
    window_parameters,
    write_patch,
)
from .read_classifier import DRAWReadClassifier, ReadClassifierConfig
from .vae import VAE, VAEConfig, VAEOutput

__all__ = [
    "DRAW",
    "DRAWConfig",
    "DRAWOutput",
    "ELBO",
    "bernoulli_nll",
    "binarize",
    "check_binary",
    "gaussian_kl",
    "gaussian_log_density",
    "importance_log_likelihood",
    "negative_elbo",
    "AttentionWindow",
    "ReadAttention",
    "ReadGlimpse",
    "ReadNoAttention",
    "Window",
    "WriteAttention",
    "WriteNoAttention",
    "filterbank",
    "read_glimpse",
    "window_boxes",
    "window_parameters",
    "write_patch",
    "DRAWReadClassifier",
    "ReadClassifierConfig",
    "VAE",
    "VAEConfig",
    "VAEOutput",
]
