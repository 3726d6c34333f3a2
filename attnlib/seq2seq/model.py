"""The encoder-decoder frame shared by every model of Part II's first chapters.

A decoder is written as one *step*: given the previous target token and its state, return
the logits of the next token, the new state and the attention weights it used (``None``
for a decoder without attention).  The same step serves teacher-forced training
(:meth:`StepDecoder.forward` loops over the target), greedy decoding and beam search
(:mod:`attnlib.seq2seq.decoding`).
"""

from __future__ import annotations

from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_rank
from .encoder import Encoder, EncoderOutput

__all__ = ["StepDecoder", "MaxoutReadout", "Seq2Seq", "sequence_loss"]

State = Any  # a tensor, or a tuple of tensors and ints (see decoding._select_state)


class StepDecoder(nn.Module):
    """Base class of the decoders: subclasses define :meth:`init_state` and :meth:`step`."""

    def init_state(self, enc: EncoderOutput) -> State:
        """The decoder state before the first step, computed from the encoder output."""
        raise NotImplementedError

    def step(self, prev_tokens: Tensor, state: State, enc: EncoderOutput) -> tuple[Tensor, State, Optional[Tensor]]:
        """One decoding step.

        Args:
            prev_tokens: ``(B,)`` the previous target tokens (``<bos>`` at the first step).
            state: the decoder state after the previous step.
            enc: the encoder output.

        Returns:
            ``(logits (B, V), new_state, weights (B, S) or None)``.
        """
        raise NotImplementedError

    def forward(self, tgt_in: Tensor, enc: EncoderOutput) -> tuple[Tensor, Optional[Tensor]]:
        """Teacher forcing over a whole target.

        Args:
            tgt_in: ``(B, T)`` target tokens shifted right (``<bos>`` first).

        Returns:
            ``(logits (B, T, V), weights (B, T, S) or None)``.
        """
        check_rank(tgt_in, "tgt_in", 2, "(B, T)")
        state = self.init_state(enc)
        logits: list[Tensor] = []
        weights: list[Tensor] = []
        for t in range(tgt_in.shape[1]):
            step_logits, state, step_weights = self.step(tgt_in[:, t], state, enc)
            logits.append(step_logits)
            if step_weights is not None:  # None for a decoder without attention
                weights.append(step_weights)
        stacked = torch.stack(weights, dim=1) if weights else None  # (B, T, S)
        return torch.stack(logits, dim=1), stacked  # (B, T, V)


class MaxoutReadout(nn.Module):
    """The deep output of RNNsearch (Bahdanau et al., 2015, appendix A.2.2).

    ``t~ = U_o s + V_o E y_prev + C_o c``, then a maxout over pairs of units,
    ``t_j = max(t~_2j-1, t~_2j)``, then ``logits = W_o t``.

    Args:
        state_dim, embed_dim, context_dim: sizes of ``s``, ``E y`` and ``c``.
        readout_dim: ``l``, the size of ``t`` after the maxout (the paper: 500).
        vocab_size: output vocabulary size.
        dropout: dropout on ``t`` before the output layer.
    """

    def __init__(
        self, state_dim: int, embed_dim: int, context_dim: int, readout_dim: int, vocab_size: int, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.pre = nn.Linear(state_dim + embed_dim + context_dim, 2 * readout_dim)  # [U_o V_o C_o], 2l units
        self.out = nn.Linear(readout_dim, vocab_size)  # W_o
        self.dropout = nn.Dropout(dropout)

    def forward(self, state: Tensor, prev_embedding: Tensor, context: Tensor) -> Tensor:
        """``(B, state_dim), (B, embed_dim), (B, context_dim)`` -> logits ``(B, V)``."""
        t_tilde = self.pre(torch.cat([state, prev_embedding, context], dim=-1))  # (B, 2l)
        t = t_tilde.view(*t_tilde.shape[:-1], -1, 2).max(dim=-1).values  # (B, l): maxout over pairs
        return self.out(self.dropout(t))  # (B, V)


def sequence_loss(logits: Tensor, targets: Tensor, pad_id: int = 0) -> Tensor:
    """Mean cross-entropy over the non-padding target tokens.

    Args:
        logits: ``(B, T, V)``.
        targets: ``(B, T)`` token ids, ``pad_id`` where there is no token.
    """
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=pad_id)


class Seq2Seq(nn.Module):
    """An encoder and a step decoder.

    Args:
        encoder: an ``nn.Module`` that follows the :class:`~attnlib.seq2seq.encoder.Encoder`
            protocol, e.g. :class:`~attnlib.seq2seq.encoder.BiGRUEncoder` or the
            Transformer's encoder.
        decoder: a :class:`StepDecoder`.
        bos_id: the target vocabulary's ``<bos>`` id, fed to the decoder first.
        eos_id: the target vocabulary's ``<eos>`` id, which ends a decoded sentence.
            The defaults are the ids of :class:`attnlib.data.translation.Vocab`
            (``<pad>, <bos>, <eos>, <unk>`` = 0, 1, 2, 3).

    Raises:
        ValueError: an encoder or decoder that is not an ``nn.Module``, or equal token ids.
    """

    def __init__(self, encoder: Encoder, decoder: StepDecoder, *, bos_id: int = 1, eos_id: int = 2) -> None:
        super().__init__()
        if not isinstance(encoder, nn.Module) or not isinstance(decoder, StepDecoder):
            raise ValueError(
                f"encoder must be an nn.Module returning an EncoderOutput and decoder a StepDecoder; "
                f"got {type(encoder).__name__} and {type(decoder).__name__}"
            )
        if bos_id == eos_id:
            raise ValueError(f"bos_id and eos_id must differ; got {bos_id} for both")
        self.encoder: Encoder = encoder
        self.decoder = decoder
        self.bos_id = bos_id
        self.eos_id = eos_id

    def forward(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor) -> Tensor:
        """Teacher-forced logits ``(B, T, V)`` for sources ``(B, S)`` and targets ``(B, T)``.

        The decoder's attention weights, ``(B, S)`` per step, are emitted to
        :mod:`attnlib.record` under the decoder's name.
        """
        logits, _ = self.decoder(tgt_in, self.encoder(src, src_lengths))
        return logits

    def loss(self, batch: Any, pad_id: int = 0) -> Tensor:
        """:func:`sequence_loss` of a :class:`~attnlib.data.translation.Batch`."""
        return sequence_loss(self(batch.src, batch.src_lengths, batch.tgt_in), batch.tgt_out, pad_id)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
