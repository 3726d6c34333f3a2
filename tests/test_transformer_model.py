"""attnlib.transformer.model: the Seq2Seq interface, cached steps equal teacher forcing, decoding and BLEU."""

from __future__ import annotations

import pytest
import torch

from attnlib.data.translation import make_translation_data
from attnlib.seq2seq.decoding import beam_search, greedy_decode
from attnlib.seq2seq.evaluation import bleu_report
from attnlib.train import seed_everything
from attnlib.transformer.model import Transformer, TransformerConfig


def _model(norm_first: bool, **kwargs) -> Transformer:
    seed_everything(0)
    sizes = dict(
        d_model=32, num_heads=4, num_encoder_layers=2, num_decoder_layers=2, d_ff=64, dropout=0.0, norm_first=norm_first
    )
    sizes.update(kwargs)
    return Transformer(TransformerConfig(30, 25, **sizes)).eval()


def _batch():
    src = torch.randint(4, 30, (3, 7), generator=torch.Generator().manual_seed(0))
    lengths = torch.tensor([7, 4, 2])
    src[1, 4:] = 0
    src[2, 2:] = 0
    tgt = torch.randint(4, 25, (3, 6), generator=torch.Generator().manual_seed(1))
    tgt[:, 0] = 1
    return src, lengths, tgt


@pytest.mark.parametrize("norm_first", [False, True])
def test_steps_match_teacher_forcing(norm_first):
    model = _model(norm_first)
    src, lengths, tgt = _batch()
    full = model(src, lengths, tgt)  # (B, T, V)
    assert full.shape == (3, 6, 25)
    enc = model.encoder(src, lengths)
    state = model.decoder.init_state(enc)
    steps = []
    for t in range(tgt.shape[1]):
        logits, state, weights = model.decoder.step(tgt[:, t], state, enc)
        steps.append(logits)
        assert weights.shape == (3, 7)
        assert bool((weights[2, 2:] == 0).all()) and torch.allclose(weights.sum(-1), torch.ones(3))
    err = (torch.stack(steps, 1) - full).abs().max().item()
    assert err <= 1e-5, f"step vs teacher forcing: max |error| = {err:.2e}"


def test_source_padding_does_not_matter():
    model = _model(False)
    src, lengths, tgt = _batch()
    other = src.clone()
    other[2, 2:] = 5  # garbage where sentence 2 is padding
    assert torch.allclose(model(src, lengths, tgt), model(other, lengths, tgt), atol=1e-5)


def test_greedy_and_beam_search_run_through_seq2seq():
    model = _model(True)
    src, lengths, _ = _batch()
    hyps = greedy_decode(model, src, lengths, max_len=6)
    assert len(hyps) == 3
    for h, n in zip(hyps, lengths.tolist()):
        assert 1 <= len(h.tokens) <= 6 and h.alignment.shape == (len(h.tokens), n)
    one = beam_search(model, src[1, :4], 4, beam_size=1, max_len=6)
    assert one.tokens == hyps[1].tokens  # beam 1 = greedy


def test_overfits_tiny_translation_and_scores_with_bleu_report():
    seed_everything(0)
    pairs = [
        (["the", "cat", "eats", "."], ["le", "chat", "mange", "."]),
        (["a", "dog", "sleeps", "."], ["un", "chien", "dort", "."]),
    ] * 20
    data = make_translation_data(pairs, valid_fraction=0.0, test_fraction=0.0, min_freq=1)
    data.test = pairs[:2]
    c = TransformerConfig(
        len(data.src_vocab),
        len(data.tgt_vocab),
        d_model=32,
        num_heads=2,
        num_encoder_layers=1,
        num_decoder_layers=1,
        d_ff=64,
        dropout=0.0,
        label_smoothing=0.0,
    )
    model = Transformer(c)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    batch = data.encode(pairs[:2])
    for _ in range(60):
        loss = model.loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.05
    report = bleu_report(model, data, split="test", max_len=8)
    assert report["hypotheses"] == [p[1] for p in pairs[:2]]
    assert report["bleu"] > 99


def test_config_checks_heads():
    with pytest.raises(ValueError, match="d_model must be divisible by num_heads; got d_model=30, num_heads=4"):
        TransformerConfig(10, 10, d_model=30, num_heads=4)
