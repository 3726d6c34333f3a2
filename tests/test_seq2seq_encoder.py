"""attnlib.seq2seq.encoder: the bidirectional GRU encoder."""

from __future__ import annotations

import pytest
import torch
from conftest import A, batch, make_model

torch.set_num_threads(1)  # tiny sequential ops: one thread is faster and deterministic


def test_encoder_shapes_mask_and_padding():
    enc = make_model("plain").encoder
    src, lengths, _ = batch()
    out = enc(src, lengths)
    assert out.annotations.shape == (3, 7, A) and out.mask.shape == (3, 7)
    assert out.summary.shape == (3, A) and out.backward_first.shape == (3, A // 2)
    assert out.mask.sum(1).tolist() == [7, 3, 5]
    assert torch.equal(out.annotations[1, 3:], torch.zeros(4, A)), "padding annotations must be zero"


def test_padding_does_not_change_a_sentence_encoding():
    """Packing: the backward GRU starts at the last real token, whatever the padding."""
    enc = make_model("plain").encoder
    src, lengths, _ = batch()
    padded = enc(src, lengths)
    alone = enc(src[1:2, :3], lengths[1:2])
    assert torch.allclose(padded.annotations[1, :3], alone.annotations[0], atol=1e-6)
    assert torch.allclose(padded.summary[1], alone.summary[0], atol=1e-6)


def test_encoder_rejects_bad_lengths():
    enc = make_model("plain").encoder
    with pytest.raises(ValueError, match=r"src_lengths must hold B = 2 lengths in 1..S = 4"):
        enc(torch.ones(2, 4, dtype=torch.long), torch.tensor([5, 1]))
    with pytest.raises(ValueError, match=r"src must have exactly 2 dimensions \(B, S\)"):
        enc(torch.ones(4, dtype=torch.long), torch.tensor([4]))
