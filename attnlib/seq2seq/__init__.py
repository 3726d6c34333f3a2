"""Sequence-to-sequence models with and without attention (Part II, first chapters).

- :mod:`~attnlib.seq2seq.encoder`: the bidirectional GRU encoder of RNNsearch;
- :mod:`~attnlib.seq2seq.rnnencdec`: the decoder without attention (one fixed context);
- :mod:`~attnlib.seq2seq.bahdanau`: RNNsearch's additive attention decoder;
- :mod:`~attnlib.seq2seq.luong`: Luong's global and local (local-m, local-p) attention;
- :mod:`~attnlib.seq2seq.model`: the encoder-decoder frame and the loss;
- :mod:`~attnlib.seq2seq.decoding`: greedy and beam search, returning alignments;
- :mod:`~attnlib.seq2seq.metrics`: alignment accuracy and BLEU by sentence length;
- :mod:`~attnlib.seq2seq.evaluation`: decode a test set and score it.
"""

from __future__ import annotations

from .bahdanau import BahdanauDecoder
from .decoding import Hypothesis, beam_search, greedy_decode
from .encoder import BiGRUEncoder, Encoder, EncoderOutput
from .evaluation import DEFAULT_LENGTH_EDGES, bleu_report, date_scores, decode_batches
from .luong import ATTENTION_KINDS, LuongDecoder, gaussian_window, local_window_mask
from .metrics import alignment_accuracy, bleu_by_length, corpus_bleu, uniform_alignment_accuracy
from .model import MaxoutReadout, Seq2Seq, StepDecoder, sequence_loss
from .rnnencdec import PlainDecoder

__all__ = [
    "BahdanauDecoder",
    "Hypothesis",
    "beam_search",
    "greedy_decode",
    "BiGRUEncoder",
    "Encoder",
    "EncoderOutput",
    "DEFAULT_LENGTH_EDGES",
    "bleu_report",
    "date_scores",
    "decode_batches",
    "ATTENTION_KINDS",
    "LuongDecoder",
    "gaussian_window",
    "local_window_mask",
    "alignment_accuracy",
    "bleu_by_length",
    "corpus_bleu",
    "uniform_alignment_accuracy",
    "MaxoutReadout",
    "Seq2Seq",
    "StepDecoder",
    "sequence_loss",
    "PlainDecoder",
]
