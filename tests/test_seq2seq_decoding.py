"""attnlib.seq2seq.decoding: greedy decoding and beam search."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import ALL, batch, make_model

from attnlib.data.translation import EOS
from attnlib.seq2seq import beam_search, greedy_decode

torch.set_num_threads(1)  # tiny sequential ops: one thread is faster and deterministic


@pytest.mark.parametrize("kind", ALL)
def test_beam_one_equals_greedy(kind):
    model = make_model(kind)
    src, lengths, _ = batch()
    greedy = greedy_decode(model, src, lengths, max_len=6)
    for b in range(3):
        beam = beam_search(model, src[b, : int(lengths[b])], int(lengths[b]), beam_size=1, max_len=6)
        assert beam.tokens == greedy[b].tokens
        assert math.isclose(beam.log_prob, greedy[b].log_prob, rel_tol=1e-5, abs_tol=1e-5)
        if greedy[b].alignment is not None:
            assert beam.alignment.shape == (len(beam.tokens), int(lengths[b]))
            assert torch.allclose(beam.alignment, greedy[b].alignment, atol=1e-6)


@pytest.mark.parametrize("kind", ["bahdanau", "concat:local-p"])
def test_beam_search_finds_finished_hypotheses_with_alignments(kind):
    model = make_model(kind)
    src, lengths, _ = batch()
    hyp = beam_search(model, src[0], int(lengths[0]), beam_size=4, max_len=8, length_penalty=0.6)
    assert 1 <= len(hyp.tokens) <= 8 and hyp.alignment.shape == (len(hyp.tokens), 7)
    assert hyp.tokens[-1] == EOS or len(hyp.tokens) == 8
    with pytest.raises(ValueError, match="beam_size must be >= 1"):
        beam_search(model, src[0], 7, beam_size=0)
    with pytest.raises(ValueError, match="one sentence"):
        beam_search(model, src, 7)


def test_decoding_is_deterministic_under_a_seed():
    src, lengths, _ = batch()
    first = greedy_decode(make_model("bahdanau", seed=3), src, lengths, max_len=6)
    second = greedy_decode(make_model("bahdanau", seed=3), src, lengths, max_len=6)
    other = greedy_decode(make_model("bahdanau", seed=4), src, lengths, max_len=6)
    assert [h.tokens for h in first] == [h.tokens for h in second]
    assert all(torch.equal(a.alignment, b.alignment) for a, b in zip(first, second))
    assert [h.alignment.tolist() for h in first] != [h.alignment.tolist() for h in other]
