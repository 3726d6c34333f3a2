"""attnlib.seq2seq.model: Seq2Seq with every decoder, the maxout readout, the sequence loss."""

from __future__ import annotations

import pytest
import torch
from conftest import ALL, ATTENTIVE, V_TGT, batch, make_model

import attnlib
from attnlib.seq2seq import MaxoutReadout, sequence_loss

torch.set_num_threads(1)  # tiny sequential ops: one thread is faster and deterministic


@pytest.mark.parametrize("kind", ALL)
def test_decoder_shapes_and_gradients(kind):
    model = make_model(kind).train()
    src, lengths, tgt_in = batch()
    logits = model(src, lengths, tgt_in)
    assert logits.shape == (3, 4, V_TGT)
    sequence_loss(logits, tgt_in).backward()
    assert all(p.grad is not None for n, p in model.named_parameters() if p.requires_grad and "embed" not in n)


@pytest.mark.parametrize("kind", ATTENTIVE)
def test_padding_never_receives_attention_and_maps_are_recorded(kind):
    model = make_model(kind)
    src, lengths, tgt_in = batch()
    with attnlib.record_attention(model) as maps:
        model(src, lengths, tgt_in)
    weights = maps.stacked("decoder", dim=1)  # (B, T, S)
    assert weights.shape == (3, 4, 7)
    for b, n in enumerate(lengths.tolist()):
        assert torch.equal(weights[b, :, n:], torch.zeros(4, 7 - n)), "padding received attention"
    if "local-p" not in kind:
        assert torch.allclose(weights.sum(-1), torch.ones(3, 4), atol=1e-6)
    else:
        assert (weights.sum(-1) <= 1 + 1e-6).all()  # the Gaussian lowers the total


def test_maxout_readout_takes_the_max_of_pairs():
    readout = MaxoutReadout(2, 1, 1, readout_dim=2, vocab_size=3)
    with torch.no_grad():
        readout.pre.weight.zero_()
        readout.pre.bias.copy_(torch.tensor([1.0, 5.0, -2.0, -3.0]))
        readout.out.weight.copy_(torch.eye(3, 2))
        readout.out.bias.zero_()
    logits = readout(torch.zeros(1, 2), torch.zeros(1, 1), torch.zeros(1, 1))
    assert torch.equal(logits, torch.tensor([[5.0, -2.0, 0.0]]))


def test_sequence_loss_ignores_padding():
    logits = torch.randn(2, 3, 5)
    targets = torch.tensor([[1, 2, 0], [3, 0, 0]])
    expected = torch.nn.functional.cross_entropy(
        torch.stack([logits[0, 0], logits[0, 1], logits[1, 0]]), torch.tensor([1, 2, 3])
    )
    assert torch.allclose(sequence_loss(logits, targets), expected)
