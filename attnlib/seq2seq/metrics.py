"""How good is a translation, and does attention look where it should?

- :func:`alignment_accuracy`: on a task whose alignment is known (date normalisation,
  :mod:`attnlib.data.dates`), the share of each output token's attention mass that lies on
  the source span it comes from; averaged over the tokens that have a span.
- :func:`corpus_bleu` and :func:`bleu_by_length`: BLEU (Papineni et al., 2002) computed by
  sacrebleu (Post, 2018), overall and per bucket of source length, the measurement of
  Bahdanau et al.'s figure 2.  Sentences are compared as the space-joined tokens of
  :func:`attnlib.data.translation.tokenize` (``tokenize="none"`` in sacrebleu: both sides
  are already tokenised the same way), so scores are comparable within this course, not
  with papers that score detokenised text.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor

from .._checks import shape_str

__all__ = ["alignment_accuracy", "uniform_alignment_accuracy", "corpus_bleu", "bleu_by_length"]

Span = Optional[tuple[int, int]]


def alignment_accuracy(weights: Tensor, spans: Sequence[Span]) -> float:
    """Mean attention mass on the correct span.

    Args:
        weights: ``(T, S)`` attention of ``T`` output steps over ``S`` source positions;
            rows beyond ``len(spans)`` (e.g. the ``<eos>`` step) are ignored.
        spans: per output step, the ``(start, end)`` source span it comes from, or ``None``.

    Returns:
        The mean over steps with a span of ``weights[t, start:end].sum()``, in ``[0, 1]``.
    """
    if weights.dim() != 2:
        raise ValueError(f"weights must be (T, S); got {shape_str(weights.shape)}")
    masses = [
        float(weights[t, span[0] : span[1]].sum())
        for t, span in enumerate(spans[: weights.shape[0]])
        if span is not None
    ]
    if not masses:
        raise ValueError("no output step has a span to score")
    return sum(masses) / len(masses)


def uniform_alignment_accuracy(source_length: int, spans: Sequence[Span]) -> float:
    """What :func:`alignment_accuracy` gives for uniform weights over ``source_length``
    positions: the chance level, the score of a model that does not align at all."""
    uniform = torch.full((len(spans), source_length), 1.0 / source_length)
    return alignment_accuracy(uniform, spans)


def corpus_bleu(hypotheses: Sequence[Sequence[str]], references: Sequence[Sequence[str]]) -> float:
    """Corpus BLEU (0 to 100) of tokenised hypotheses against one tokenised reference each."""
    import sacrebleu

    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    return sacrebleu.corpus_bleu(
        [" ".join(h) for h in hypotheses], [[" ".join(r) for r in references]], tokenize="none", force=True
    ).score


def bleu_by_length(
    hypotheses: Sequence[Sequence[str]],
    references: Sequence[Sequence[str]],
    source_lengths: Sequence[int],
    edges: Sequence[int],
) -> list[dict[str, object]]:
    """BLEU of each bucket of source length.

    Args:
        edges: increasing bucket upper bounds, e.g. ``[5, 8, 11, 15, 100]`` makes the buckets
            ``1-5, 6-8, 9-11, 12-15, 16-100``.

    Returns:
        One ``{"bucket": "6-8", "sentences": n, "bleu": b}`` per non-empty bucket.
    """
    rows, low = [], 1
    for high in edges:
        index = [i for i, n in enumerate(source_lengths) if low <= n <= high]
        if index:
            rows.append(
                {
                    "bucket": f"{low}-{high}",
                    "sentences": len(index),
                    "bleu": corpus_bleu([hypotheses[i] for i in index], [references[i] for i in index]),
                }
            )
        low = high + 1
    return rows
