"""attnlib.seq2seq.metrics: alignment accuracy and BLEU."""

from __future__ import annotations

import math

import pytest
import torch

from attnlib.seq2seq import alignment_accuracy, bleu_by_length, corpus_bleu, uniform_alignment_accuracy


def test_alignment_accuracy_on_hand_made_weights():
    weights = torch.tensor([[0.7, 0.2, 0.1, 0.0], [0.0, 0.5, 0.5, 0.0], [0.25, 0.25, 0.25, 0.25]])
    spans = [(0, 1), None, (1, 3)]
    assert math.isclose(alignment_accuracy(weights, spans), (0.7 + 0.5) / 2, abs_tol=1e-6)
    assert math.isclose(uniform_alignment_accuracy(4, spans), (0.25 + 0.5) / 2, abs_tol=1e-6)
    with pytest.raises(ValueError, match="no output step has a span"):
        alignment_accuracy(weights, [None, None])


def test_bleu_with_sacrebleu():
    refs = [["le", "chat", "est", "noir", "."], ["il", "fait", "beau", "aujourd'hui", "."]]
    assert math.isclose(corpus_bleu(refs, refs), 100.0)
    assert corpus_bleu([["le", "chien"], ["non"]], refs) < 20
    rows = bleu_by_length(refs, refs, [4, 9], edges=[5, 10])
    assert [(r["bucket"], r["sentences"]) for r in rows] == [("1-5", 1), ("6-10", 1)]
    with pytest.raises(ValueError, match="2 hypotheses but 1 references"):
        corpus_bleu(refs, refs[:1])
