"""The decoder without attention: RNNencdec (Cho et al., 2014, arXiv:1406.1078), the baseline of
Bahdanau et al. (2015).

The whole source reaches the decoder through one fixed vector ``c``, computed once from the
encoder's two end states; every output word is predicted from the same ``c``.  To make the
comparison with :class:`~attnlib.seq2seq.bahdanau.BahdanauDecoder` fair, everything else is
the same as in RNNsearch: the GRU update ``s_i = GRU([E y_(i-1); c], s_(i-1))`` and the maxout
readout from ``(s_(i-1), E y_(i-1), c)``.  Only ``c`` differs: fixed here, re-computed by
attention at every step there.  That fixed-length vector is the bottleneck that makes
translation quality fall as sentences get longer.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .encoder import EncoderOutput
from .model import MaxoutReadout, StepDecoder

__all__ = ["PlainDecoder"]


class PlainDecoder(StepDecoder):
    """GRU decoder conditioned on a fixed summary of the source.

    Args:
        vocab_size: target vocabulary size.
        annotation_dim: size of the encoder's annotations (``2H``).
        embed_dim: target embedding size.
        hidden_dim: decoder state size.
        readout_dim: size of the maxout readout.
        dropout: dropout on embeddings and readout.
    """

    def __init__(
        self,
        vocab_size: int,
        annotation_dim: int,
        embed_dim: int = 256,
        hidden_dim: int = 256,
        readout_dim: int = 256,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.summarise = nn.Linear(annotation_dim, hidden_dim)  # c = tanh(V [h->_last; h<-_1])
        self.init = nn.Linear(hidden_dim, hidden_dim)  # s_0 = tanh(W_s c)
        self.cell = nn.GRUCell(embed_dim + hidden_dim, hidden_dim)
        self.readout = MaxoutReadout(hidden_dim, embed_dim, hidden_dim, readout_dim, vocab_size, dropout)
        self.dropout = nn.Dropout(dropout)

    def init_state(self, enc: EncoderOutput) -> tuple[Tensor, Tensor]:
        """``(s_0 (B, D), c (B, D))``: the context is computed once and carried in the state."""
        context = torch.tanh(self.summarise(enc.require("summary", "PlainDecoder")))  # (B, D)
        return torch.tanh(self.init(context)), context

    def step(
        self, prev_tokens: Tensor, state: tuple[Tensor, Tensor], enc: EncoderOutput
    ) -> tuple[Tensor, tuple[Tensor, Tensor], None]:
        s_prev, context = state  # (B, D), (B, D)
        y_prev = self.dropout(self.embed(prev_tokens))  # (B, E)
        logits = self.readout(s_prev, y_prev, context)  # (B, V)
        s = self.cell(torch.cat([y_prev, context], dim=-1), s_prev)  # (B, D)
        return logits, (s, context), None
