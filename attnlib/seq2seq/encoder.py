"""The encoder protocol of attnlib.seq2seq, and the bidirectional GRU encoder of RNNsearch
(Bahdanau, Cho & Bengio, 2015, arXiv:1409.0473, §3.2).

Any module that maps ``(src (B, S), src_lengths (B,))`` to an :class:`EncoderOutput` is an
:class:`Encoder` and plugs into :class:`~attnlib.seq2seq.model.Seq2Seq` (the Transformer's
encoder does).  ``annotations``, ``mask`` and ``lengths`` are what every attention decoder
reads; ``summary`` and ``backward_first`` are what the RNN decoders start from, and an
encoder that has no such thing (the Transformer's) leaves them ``None``.

A forward GRU reads the source left to right and a backward GRU right to left; the
annotation of word ``j`` is the concatenation ``h_j = [h→_j ; h←_j]``, so it summarises the
whole sentence with a focus on the words around ``j``.  Padded positions are skipped with
packed sequences: the backward GRU starts at each sentence's last real token, not at the
padding, and padding annotations are zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Protocol

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .._checks import check_rank, shape_str
from ..masks import lengths_to_mask

__all__ = ["EncoderOutput", "Encoder", "BiGRUEncoder"]


@dataclass
class EncoderOutput:
    """What the decoders read.

    Attributes:
        annotations: ``(B, S, 2H)`` one vector per source position (zeros at padding).
        mask: ``(B, S)`` bool, ``True`` at real tokens: the key mask of every attention.
        lengths: ``(B,)`` number of real tokens.
        summary: ``(B, 2H)`` ``[h→_last ; h←_first]``, the two ends of the two directions: what
            a decoder without attention gets to see of the sentence (``None`` when the
            encoder has no such summary).
        backward_first: ``(B, H)`` ``h←_1``, from which RNNsearch initialises its decoder
            (``None`` when the encoder has no backward RNN).
    """

    annotations: Tensor
    mask: Tensor
    lengths: Tensor
    summary: Optional[Tensor] = None
    backward_first: Optional[Tensor] = None

    def require(self, field: str, reader: str) -> Tensor:
        """The tensor ``field`` (``"summary"`` or ``"backward_first"``), or a clear error naming
        the decoder (``reader``) that needs it and the encoder that did not provide it."""
        value = getattr(self, field)
        if value is None:
            raise ValueError(
                f"{reader} starts from the encoder's {field!r}, which this encoder does not provide (it is None); "
                f"use a recurrent encoder such as BiGRUEncoder"
            )
        return value


class Encoder(Protocol):
    """What :class:`~attnlib.seq2seq.model.Seq2Seq` needs of an encoder (an ``nn.Module``)."""

    def __call__(self, src: Tensor, src_lengths: Tensor) -> EncoderOutput:
        """``src`` ``(B, S)`` token ids and ``src_lengths`` ``(B,)`` -> an :class:`EncoderOutput`."""
        ...


class BiGRUEncoder(nn.Module):
    """Embedding followed by a one-layer bidirectional GRU.

    Args:
        vocab_size: source vocabulary size.
        embed_dim: word embedding size (the paper: 620).
        hidden_dim: ``H`` per direction (the paper: 1000); annotations have ``2H``.
        dropout: dropout on the embeddings.
        pad_id: the padding token id.
    """

    def __init__(
        self, vocab_size: int, embed_dim: int = 256, hidden_dim: int = 256, dropout: float = 0.0, pad_id: int = 0
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.rnn = nn.GRU(embed_dim, hidden_dim, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(dropout)
        self.hidden_dim = hidden_dim

    def forward(self, src: Tensor, src_lengths: Tensor) -> EncoderOutput:
        """Encode a padded batch.

        Args:
            src: ``(B, S)`` token ids.
            src_lengths: ``(B,)`` real lengths, each in ``1..S``.
        """
        check_rank(src, "src", 2, "(B, S)")
        check_rank(src_lengths, "src_lengths", 1, "(B,)")
        B, S = src.shape
        if src_lengths.shape[0] != B or int(src_lengths.min()) < 1 or int(src_lengths.max()) > S:
            raise ValueError(
                f"src_lengths must hold B = {B} lengths in 1..S = {S}; got shape "
                f"{shape_str(src_lengths.shape)} with values {src_lengths.tolist()[:8]}"
            )
        return self.encode_embedded(self.embed(src), src_lengths)

    def encode_embedded(self, embedded: Tensor, src_lengths: Tensor) -> EncoderOutput:
        """Encode already-embedded tokens ``(B, S, E)``: the same as :meth:`forward` after the
        embedding lookup, so that one can differentiate with respect to the embeddings."""
        check_rank(embedded, "embedded", 3, "(B, S, E)")
        B, S = embedded.shape[:2]
        x = self.dropout(embedded)  # (B, S, E)
        packed = pack_padded_sequence(x, src_lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, last = self.rnn(packed)  # last: (2, B, H): [forward at its last token, backward at token 0]
        annotations, _ = pad_packed_sequence(out, batch_first=True, total_length=S)  # (B, S, 2H)
        H = self.hidden_dim
        summary = torch.cat([last[0], last[1]], dim=-1)  # (B, 2H)
        return EncoderOutput(
            annotations=annotations,
            mask=lengths_to_mask(src_lengths.to(embedded.device), S),  # (B, S)
            lengths=src_lengths,
            summary=summary,
            backward_first=annotations[:, 0, H:],  # (B, H): h←_1
        )
