"""The attention reader: an image encoder plugged into attnlib.seq2seq's Bahdanau decoder and decoders."""

from __future__ import annotations

import pytest
import torch

import attnlib
from attnlib.reading import (
    ENCODER_KINDS,
    AttentionReader,
    ReaderConfig,
    reading_scores,
    stack_alignments,
    strip_targets,
    tokens_to_digits,
)
from attnlib.seq2seq import BahdanauDecoder, Hypothesis, Seq2Seq

SMALL = dict(
    channels=4,
    steps=1,
    height=12,
    width=24,
    annotation_dim=8,
    hidden_size=8,
    embed_dim=4,
    attention_dim=4,
    readout_dim=4,
)


def reader(kind: str = "recursive", seed: int = 0) -> AttentionReader:
    torch.manual_seed(seed)
    return AttentionReader(ReaderConfig(encoder=kind, **SMALL)).eval()


@pytest.mark.parametrize("kind", ENCODER_KINDS)
def test_is_a_seq2seq_over_columns(kind: str) -> None:
    model = reader(kind)
    assert isinstance(model, Seq2Seq) and isinstance(model.decoder, BahdanauDecoder)
    images = torch.rand(3, 1, 12, 24)
    enc = model.encoder(images, model.column_lengths(3))
    assert enc.annotations.shape == (3, 6, 8) and enc.mask.shape == (3, 6) and bool(enc.mask.all())
    flat = model.encoder(images.flatten(1), model.column_lengths(3))
    assert torch.allclose(flat.annotations, enc.annotations)


def test_attention_sums_to_one_per_character_and_is_recorded() -> None:
    model = reader()
    images = torch.rand(2, 1, 12, 24)
    tgt_in, _ = strip_targets(torch.tensor([[1, 2, 3], [4, 5, -1]]), torch.tensor([3, 2]))
    with attnlib.record_attention(model) as maps:
        model(images, model.column_lengths(2), tgt_in)
    weights = maps.stacked("decoder", dim=1)  # (B, T, S)
    assert weights.shape == (2, 4, 6)
    assert torch.allclose(weights.sum(-1), torch.ones(2, 4), atol=1e-6)


def test_greedy_reading_returns_per_character_maps() -> None:
    model = reader()
    hyps = model.read(torch.rand(3, 1, 12, 24), max_len=5)
    assert len(hyps) == 3
    for h in hyps:
        assert h.alignment is not None and h.alignment.shape == (len(h.tokens), 6)
        assert torch.allclose(h.alignment.sum(-1), torch.ones(len(h.tokens)), atol=1e-6)
    assert stack_alignments(hyps, 4).shape == (3, 4, 6)


def test_beam_of_one_agrees_with_greedy() -> None:
    model = reader(seed=3)
    image = torch.rand(1, 1, 12, 24)
    greedy = model.read(image, max_len=5)[0]
    beam = model.read_beam(image[0], beam_size=1, max_len=5)
    assert beam.tokens == greedy.tokens


def test_strip_targets() -> None:
    tgt_in, tgt_out = strip_targets(torch.tensor([[7, 0, -1]]), torch.tensor([2]))
    assert tgt_in.tolist() == [[1, 10, 3, 0]]
    assert tgt_out.tolist() == [[10, 3, 2, 0]]
    assert tokens_to_digits(tgt_out[0].tolist()) == [7, 0]


def test_reading_scores() -> None:
    labels, lengths = torch.tensor([[1, 2, 3], [4, 5, 6]]), torch.tensor([3, 3])
    hyps = [Hypothesis([4, 5, 6, 2], None, 0.0), Hypothesis([7, 8, 2], None, 0.0)]  # "123" and "45"
    scores = reading_scores(hyps, labels, lengths)
    assert scores == {"char_accuracy": pytest.approx(5 / 6), "seq_accuracy": 0.5}


def test_training_reduces_the_loss() -> None:
    model = reader()
    g = torch.Generator().manual_seed(0)
    images = torch.rand(8, 1, 12, 24, generator=g)
    labels, lengths = torch.randint(0, 10, (8, 3), generator=g), torch.full((8,), 3)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    first = model.strip_loss(images, labels, lengths).item()
    for _ in range(40):
        loss = model.strip_loss(images, labels, lengths)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert float(loss) < 0.7 * first


def test_errors() -> None:
    model = reader()
    with pytest.raises(ValueError, match=r"src must be strips of shape \(B, 1, 12, 24\) or flattened \(B, 288\)"):
        model.read(torch.rand(2, 1, 12, 20))
    with pytest.raises(ValueError, match="src_lengths must hold B = 2 column counts in 1..S = 6"):
        model.encoder(torch.rand(2, 1, 12, 24), torch.tensor([7, 6]))
    with pytest.raises(ValueError, match="encoder must be one of"):
        AttentionReader(ReaderConfig(encoder="lstm"))
    with pytest.raises(ValueError, match="multiples of 4"):
        AttentionReader(ReaderConfig(width=30))
    with pytest.raises(ValueError, match="labels must be"):
        strip_targets(torch.tensor([1, 2]), torch.tensor([2]))
