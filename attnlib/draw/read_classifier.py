"""Classifying from DRAW's soft glimpses: a recurrent attention classifier trained by backprop alone.

Gregor et al., *DRAW*, ICML 2015 (arXiv:1502.04623), section 4.1: an LSTM reads an image
through the Gaussian ``N x N`` read of :mod:`attnlib.draw.filterbank` and classifies it after
``T`` glimpses.  With ``h_0 = 0``, for ``t = 1 .. T``:

    window_t = W h_{t-1} + b                     (g_X, g_Y, sigma, delta, gamma: eqs. 21 to 24)
    g_t      = gamma F_Y x F_X^T                  (N x N)
    h_t      = LSTM(h_{t-1}, g_t)

and the class scores are ``W_a h_T``.  Every step is differentiable in the window, so
cross-entropy alone trains where to look: no REINFORCE, unlike
:class:`attnlib.hard.ram.RecurrentAttentionModel` (Mnih et al., 2014, arXiv:1406.6247).  The
first window comes from the bias alone (``h_0 = 0``), initialised to a centred grid that
spans the image.

The control for "where is learned": ``learn_window=False`` zeroes ``W`` and freezes ``W``
and ``b``, so every glimpse of every image is that initial centred grid (a fixed, blurred
``N x N`` view of the whole image) and only the LSTM and the classifier learn.

Recording: ``"read"`` emits ``T`` windows ``(B, 5)`` per forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from attnlib._checks import check_floating, check_rank, shape_str
from attnlib.draw.filterbank import ReadGlimpse

__all__ = ["ReadClassifierConfig", "DRAWReadClassifier"]


@dataclass(frozen=True)
class ReadClassifierConfig:
    """Hyperparameters of :class:`DRAWReadClassifier` (defaults: 60x60 cluttered MNIST)."""

    channels: int = 1  # greyscale
    height: int = 60  # the RAM paper's cluttered canvas (the DRAW paper's is 100x100)
    width: int = 60
    read_n: int = 12  # N x N glimpse (the DRAW paper uses 12 on 100x100)
    num_glimpses: int = 8  # T, the DRAW paper's cluttered MNIST setting
    hidden_size: int = 256  # LSTM units, the DRAW paper's
    num_classes: int = 10  # digits
    learn_window: bool = True  # False: every glimpse stays at the initial centred grid (W = 0, W and b frozen)


class DRAWReadClassifier(nn.Module):
    """An LSTM that classifies from ``T`` Gaussian glimpses it places itself.

    Args:
        config: a :class:`ReadClassifierConfig`.

    ``forward(images)``: ``images`` ``(B, 1, H, W)``; returns logits ``(B, K)``.
    """

    def __init__(self, config: ReadClassifierConfig = ReadClassifierConfig()) -> None:
        super().__init__()
        self.config = c = config
        if c.channels != 1:
            raise ValueError(f"the Gaussian read takes one channel; got channels={c.channels}")
        if c.num_glimpses < 1:
            raise ValueError(f"num_glimpses must be >= 1; got {c.num_glimpses}")
        self.read = ReadGlimpse(c.hidden_size, c.read_n, c.height, c.width)
        if not c.learn_window:
            with torch.no_grad():
                self.read.window.linear.weight.zero_()  # the window no longer depends on h
            self.read.window.linear.requires_grad_(False)  # ... and its bias stays at the initial grid
        self.core = nn.LSTMCell(c.read_n * c.read_n, c.hidden_size)
        self.classifier = nn.Linear(c.hidden_size, c.num_classes)

    def forward(self, images: Tensor) -> Tensor:
        c = self.config
        check_rank(images, "images", 4, "(B, 1, H, W)")
        check_floating(images, "images")
        if tuple(images.shape[1:]) != (1, c.height, c.width):
            raise ValueError(f"images must have shape (B, 1, {c.height}, {c.width}); got {shape_str(images.shape)}")
        x = images[:, 0]  # (B, H, W)
        h = cell = images.new_zeros(images.shape[0], c.hidden_size)  # (B, hidden)
        for _ in range(c.num_glimpses):
            glimpse = self.read(x, h)  # (B, N, N)
            h, cell = self.core(glimpse.flatten(1), (h, cell))  # (B, hidden)
        return self.classifier(h)  # (B, K)
