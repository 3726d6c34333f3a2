"""Decode a whole test set and score it: the measurements of the sequence chapters.

- :func:`date_scores`: exact-match accuracy and alignment accuracy on the date task, with
  the uniform-attention level that a model without alignment would get;
- :func:`bleu_report`: corpus BLEU and BLEU per source-length bucket on translation pairs.

Both decode greedily, in batches, with the model in ``eval()`` mode.
"""

from __future__ import annotations

from typing import Iterable, Optional, Sequence

import torch

from ..data.dates import DateExample, encode_dates
from ..data.translation import Batch, TranslationData, Vocab
from .decoding import Hypothesis, greedy_decode
from .metrics import alignment_accuracy, bleu_by_length, corpus_bleu, uniform_alignment_accuracy
from .model import Seq2Seq

__all__ = ["decode_batches", "date_scores", "bleu_report", "DEFAULT_LENGTH_EDGES"]

#: Upper edges of the source-length buckets (in tokens) for BLEU by length, i.e. the
#: buckets 1-5, 6-8, 9-11 and 12-20.  Tatoeba has few sentences of more than 15 tokens, so
#: the long tail is one bucket.
DEFAULT_LENGTH_EDGES = (5, 8, 11, 20)


def decode_batches(
    model: Seq2Seq, batches: Iterable[Batch], max_len: int = 50, device: Optional[torch.device] = None
) -> list[Hypothesis]:
    """Greedy hypotheses for every sentence of ``batches``, in order."""
    model.eval()
    device = device or next(model.parameters()).device
    out: list[Hypothesis] = []
    for batch in batches:
        out += greedy_decode(model, batch.src.to(device), batch.src_lengths.to(device), max_len=max_len)
    return out


def date_scores(
    model: Seq2Seq, examples: Sequence[DateExample], src_vocab: Vocab, tgt_vocab: Vocab, batch_size: int = 250
) -> dict[str, float]:
    """``exact_match`` (the whole ISO date right), ``alignment_accuracy`` (mean attention mass
    on the right source field; NaN without attention) and ``uniform_alignment`` (chance)."""
    batches = (
        encode_dates(examples[i : i + batch_size], src_vocab, tgt_vocab) for i in range(0, len(examples), batch_size)
    )
    hyps = decode_batches(model, batches, max_len=12)
    exact = sum(float("".join(tgt_vocab.decode(h.tokens)) == e.target) for h, e in zip(hyps, examples)) / len(examples)
    alignments = [h.alignment for h in hyps if h.alignment is not None]
    if not alignments:  # a decoder without attention
        aligned = float("nan")
    else:
        aligned = sum(alignment_accuracy(a, e.spans) for a, e in zip(alignments, examples)) / len(examples)
    uniform = sum(uniform_alignment_accuracy(len(e.source) + 1, e.spans) for e in examples) / len(examples)
    return {"exact_match": exact, "alignment_accuracy": aligned, "uniform_alignment": uniform}


def bleu_report(
    model: Seq2Seq,
    data: TranslationData,
    split: str = "test",
    edges: Sequence[int] = DEFAULT_LENGTH_EDGES,
    max_len: int = 40,
    batch_size: int = 200,
    max_per_bucket: Optional[int] = None,
) -> dict:
    """Corpus BLEU and BLEU per bucket of source length (in tokens, without ``<eos>``).

    Args:
        max_per_bucket: score at most this many sentences of each length bucket (the first
            ones of the split): long sentences are rare, so capping the common short ones
            saves decoding time without changing any bucket's BLEU much.  The corpus BLEU
            is then that of the capped set.
    """
    pairs = {"train": data.train, "valid": data.valid, "test": data.test}[split]
    if max_per_bucket is not None:
        kept, low = [], 1
        for high in edges:
            kept += [p for p in pairs if low <= len(p[0]) <= high][:max_per_bucket]
            low = high + 1
        pairs = kept
    batches = (data.encode(pairs[i : i + batch_size]) for i in range(0, len(pairs), batch_size))
    hyps = [data.tgt_vocab.decode(h.tokens) for h in decode_batches(model, batches, max_len=max_len)]
    refs = [tgt for _, tgt in pairs]
    lengths = [len(src) for src, _ in pairs]
    return {
        "bleu": corpus_bleu(hyps, refs),
        "by_length": bleu_by_length(hyps, refs, lengths, edges),
        "sentences": len(pairs),
        "hypotheses": hyps,
    }
