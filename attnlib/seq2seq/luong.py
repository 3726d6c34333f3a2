"""Global and local attention of Luong, Pham & Manning (2015), "Effective approaches to
attention-based neural machine translation", EMNLP, arXiv:1508.04025 (§3).

Unlike RNNsearch, the decoder first updates its state and then attends with the *current*
state ``h_t``::

    h_t   = GRU([E y_(t-1); h~_(t-1)], h_(t-1))        (input feeding: the previous attentional
                                                        vector h~ is fed back, §3.3)
    a_t   = align(h_t, h_s)                            (score: dot, general or concat)
    c_t   = sum_s a_t(s) h_s
    h~_t  = tanh(W_c [c_t; h_t]),      p(y_t) = softmax(W_s h~_t)

Which source positions ``align`` may use:

- **global**: all of them (softmax over the whole sentence);
- **local-m** (monotonic): a window ``[p_t - D, p_t + D]`` around ``p_t = t``;
- **local-p** (predictive): ``p_t = S * sigmoid(v_p^T tanh(W_p h_t))`` with ``S`` the source
  length; the softmax over the window ``[p_t - D, p_t + D]`` is multiplied by a Gaussian
  ``exp(-(s - p_t)^2 / (2 sigma^2))`` with ``sigma = D / 2`` (eq. 10), so the weights favour
  positions near ``p_t`` and no longer sum to one.

Positions are 0-based here (the paper counts from 1).  The paper's decoder is a stacked LSTM;
this one is a one-layer GRU, like the rest of this package.  The weights ``a_t`` ``(B, S)``
(after the Gaussian for local-p) are emitted to :mod:`attnlib.record`, and so are the
window centres ``p_t`` ``(B,)`` of the local variants, under the tag ``"positions"``
(``maps["<decoder name>.positions"]``).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from ..functional import masked_softmax
from ..record import emit
from .encoder import EncoderOutput
from .model import StepDecoder

__all__ = ["ATTENTION_KINDS", "local_window_mask", "gaussian_window", "LuongDecoder"]

ATTENTION_KINDS = ("global", "local-m", "local-p")


def local_window_mask(centers: Tensor, lengths: Tensor, max_len: int, half_width: int) -> Tensor:
    """Positions ``s`` with ``|s - p_t| <= D`` inside each sentence.

    Args:
        centers: ``(B,)`` window centres ``p_t`` (real numbers for local-p).
        lengths: ``(B,)`` source lengths ``S``.
        max_len: the padded source length.
        half_width: ``D``.

    Returns:
        ``(B, max_len)`` bool.  A centre beyond the sentence end still keeps the last real
        position, so no row is empty.
    """
    positions = torch.arange(max_len, device=centers.device, dtype=centers.dtype)  # (S,)
    lengths = lengths.to(centers.device)
    centers = torch.minimum(centers, (lengths - 1).to(centers.dtype))  # (B,)
    inside = (positions[None, :] - centers[:, None]).abs() <= half_width  # (B, S)
    return inside & (positions[None, :] < lengths[:, None])


def gaussian_window(centers: Tensor, max_len: int, sigma: float) -> Tensor:
    """``exp(-(s - p_t)^2 / (2 sigma^2))`` for every position: ``(B,)`` centres -> ``(B, max_len)``."""
    positions = torch.arange(max_len, device=centers.device, dtype=centers.dtype)  # (S,)
    return torch.exp(-((positions[None, :] - centers[:, None]) ** 2) / (2 * sigma**2))  # (B, S)


class LuongDecoder(StepDecoder):
    """GRU decoder with Luong attention.

    Args:
        vocab_size: target vocabulary size.
        annotation_dim: size of an encoder annotation.
        score: a scoring module mapping ``h_t (B, 1, D)`` and annotations ``(B, S, 2H)`` to
            ``(B, 1, S)``: :class:`~attnlib.scoring.DotScore` (needs ``D = 2H``),
            :class:`~attnlib.scoring.BilinearScore` ("general") or
            :class:`~attnlib.scoring.ConcatScore`.
        attention: ``"global"``, ``"local-m"`` or ``"local-p"``.
        window: ``D``, the half width of the local window (the paper: 10).
        input_feeding: feed ``h~_(t-1)`` back into the GRU input.
        embed_dim, hidden_dim: target embedding and state sizes.
        dropout: dropout on embeddings and before the output layer.
    """

    def __init__(
        self,
        vocab_size: int,
        annotation_dim: int,
        score: nn.Module,
        attention: str = "global",
        window: int = 10,
        input_feeding: bool = True,
        embed_dim: int = 256,
        hidden_dim: int = 256,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if attention not in ATTENTION_KINDS:
            raise ValueError(f"attention must be one of {ATTENTION_KINDS}; got {attention!r}")
        if window < 0:
            raise ValueError(f"window must be >= 0; got {window}")
        self.attention = attention
        self.window = window
        self.input_feeding = input_feeding
        self.hidden_dim = hidden_dim
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.init = nn.Linear(annotation_dim, hidden_dim)
        self.cell = nn.GRUCell(embed_dim + (hidden_dim if input_feeding else 0), hidden_dim)
        self.score = score
        self.combine = nn.Linear(annotation_dim + hidden_dim, hidden_dim)  # W_c
        self.out = nn.Linear(hidden_dim, vocab_size)  # W_s
        self.dropout = nn.Dropout(dropout)
        if attention == "local-p":
            self.position = nn.Sequential(
                nn.Linear(hidden_dim, hidden_dim), nn.Tanh(), nn.Linear(hidden_dim, 1)
            )  # W_p, v_p

    def init_state(self, enc: EncoderOutput) -> tuple[Tensor, Tensor, int]:
        """``(h_0 (B, D), h~_0 (B, D) = 0, t = 0)``."""
        h = torch.tanh(self.init(enc.require("summary", "LuongDecoder")))  # (B, D)
        return h, torch.zeros_like(h), 0

    def window_mask(self, h: Tensor, t: int, enc: EncoderOutput) -> tuple[Tensor, Optional[Tensor]]:
        """Which positions step ``t`` may use ``(B, S)``, and the Gaussian ``(B, S)`` for local-p."""
        S = enc.mask.shape[1]
        if self.attention == "global":
            return enc.mask, None
        lengths = enc.lengths.to(h.device)
        if self.attention == "local-m":
            centers = torch.full((h.shape[0],), float(t), device=h.device)  # (B,): p_t = t
            emit(self, centers, tag="positions")
            return local_window_mask(centers, lengths, S, self.window), None
        centers = lengths.to(h.dtype) * torch.sigmoid(self.position(h))[:, 0]  # (B,): p_t = S sigmoid(...)
        emit(self, centers, tag="positions")
        return local_window_mask(centers, lengths, S, self.window), gaussian_window(centers, S, self.window / 2)

    def step(
        self, prev_tokens: Tensor, state: tuple[Tensor, Tensor, int], enc: EncoderOutput
    ) -> tuple[Tensor, tuple[Tensor, Tensor, int], Tensor]:
        h_prev, h_tilde_prev, t = state
        y_prev = self.dropout(self.embed(prev_tokens))  # (B, E)
        x = torch.cat([y_prev, h_tilde_prev], dim=-1) if self.input_feeding else y_prev
        h = self.cell(x, h_prev)  # (B, D)
        scores = self.score(h[:, None, :], enc.annotations)[:, 0]  # (B, S)
        allowed, gaussian = self.window_mask(h, t, enc)
        weights = masked_softmax(scores, allowed)  # (B, S)
        if gaussian is not None:
            weights = weights * gaussian  # local-p: favour positions near p_t (eq. 10)
        emit(self, weights)
        context = (weights[:, :, None] * enc.annotations).sum(dim=1)  # (B, 2H)
        h_tilde = torch.tanh(self.combine(torch.cat([context, h], dim=-1)))  # (B, D)
        logits = self.out(self.dropout(h_tilde))  # (B, V)
        return logits, (h, h_tilde, t + 1), weights
