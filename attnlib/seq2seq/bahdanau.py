"""RNNsearch: the attention decoder of Bahdanau, Cho & Bengio (2015), "Neural machine translation
by jointly learning to align and translate", ICLR, arXiv:1409.0473 (§3.1 and appendix A.2.2).

At output step ``i`` the previous decoder state ``s_(i-1)`` is scored against every
annotation ``h_j`` with the additive score and the scores become weights::

    e_ij  = v_a^T tanh(W_a s_(i-1) + U_a h_j)          (no bias)
    a_ij  = softmax_j(e_ij)                            (padding positions excluded)
    c_i   = sum_j a_ij h_j
    t~_i  = U_o s_(i-1) + V_o E y_(i-1) + C_o c_i,  t_i = maxout(t~_i),  p(y_i) = softmax(W_o t_i)
    s_i   = GRU([E y_(i-1); c_i], s_(i-1)),             s_0 = tanh(W_s h<-_1)

``U_a h_j`` does not depend on ``i``; it is computed once per sentence (the paper notes the
same saving).  The weights ``a_i`` ``(B, S)`` are emitted to :mod:`attnlib.record` at every step.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..functional import masked_softmax
from ..record import emit
from ..scoring import AdditiveScore
from .encoder import EncoderOutput
from .model import MaxoutReadout, StepDecoder

__all__ = ["BahdanauDecoder"]


class BahdanauDecoder(StepDecoder):
    """GRU decoder with additive attention over the encoder's annotations.

    Args:
        vocab_size: target vocabulary size.
        annotation_dim: size of an annotation, ``2H``.
        embed_dim: target embedding size (the paper: 620).
        hidden_dim: decoder state size ``n`` (the paper: 1000).
        attention_dim: ``n'``, the hidden size of the additive score (the paper: 1000).
        readout_dim: ``l``, the maxout readout size (the paper: 500).
        dropout: dropout on embeddings and readout.
    """

    def __init__(
        self,
        vocab_size: int,
        annotation_dim: int,
        embed_dim: int = 256,
        hidden_dim: int = 256,
        attention_dim: int = 256,
        readout_dim: int = 256,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.score = AdditiveScore(hidden_dim, annotation_dim, attention_dim)  # W_a, U_a, v_a
        self.init = nn.Linear(annotation_dim // 2, hidden_dim)  # W_s
        self.cell = nn.GRUCell(embed_dim + annotation_dim, hidden_dim)
        self.readout = MaxoutReadout(hidden_dim, embed_dim, annotation_dim, readout_dim, vocab_size, dropout)
        self.dropout = nn.Dropout(dropout)

    def init_state(self, enc: EncoderOutput) -> tuple[Tensor, Tensor]:
        """``(s_0 (B, D), U_a h (B, S, n'))``: the projected annotations are cached in the state."""
        s0 = torch.tanh(self.init(enc.require("backward_first", "BahdanauDecoder")))  # (B, D)
        return s0, self.score.project_keys(enc.annotations)

    def attend(self, s_prev: Tensor, projected_keys: Tensor, enc: EncoderOutput) -> tuple[Tensor, Tensor]:
        """``(context c_i (B, 2H), weights a_i (B, S))`` for the previous state ``s_prev (B, D)``."""
        scores = self.score.score_projected(s_prev[:, None, :], projected_keys)[:, 0]  # (B, S)
        weights = masked_softmax(scores, enc.mask)  # (B, S): zero on padding
        emit(self, weights)
        context = (weights[:, :, None] * enc.annotations).sum(dim=1)  # (B, 2H)
        return context, weights

    def step(
        self, prev_tokens: Tensor, state: tuple[Tensor, Tensor], enc: EncoderOutput
    ) -> tuple[Tensor, tuple[Tensor, Tensor], Tensor]:
        s_prev, projected_keys = state
        y_prev = self.dropout(self.embed(prev_tokens))  # (B, E)
        context, weights = self.attend(s_prev, projected_keys, enc)
        logits = self.readout(s_prev, y_prev, context)  # (B, V)
        s = self.cell(torch.cat([y_prev, context], dim=-1), s_prev)  # (B, D)
        return logits, (s, projected_keys), weights
