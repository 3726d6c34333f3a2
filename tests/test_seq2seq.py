"""attnlib.seq2seq: encoder, the three decoders, local attention, decoding, metrics."""
from __future__ import annotations

import math

import pytest
import torch

import attnlib
from attnlib.data.dates import date_examples, date_vocabs, encode_dates
from attnlib.data.translation import EOS, pad_batch
from attnlib.scoring import BilinearScore, ConcatScore, DotScore
from attnlib.seq2seq import (
    BahdanauDecoder,
    BiGRUEncoder,
    LuongDecoder,
    MaxoutReadout,
    PlainDecoder,
    Seq2Seq,
    alignment_accuracy,
    beam_search,
    bleu_by_length,
    corpus_bleu,
    gaussian_window,
    greedy_decode,
    local_window_mask,
    sequence_loss,
    uniform_alignment_accuracy,
)

torch.set_num_threads(1)  # tiny sequential ops: one thread is faster and deterministic
V_SRC, V_TGT, A = 20, 15, 24  # vocabularies and annotation size (2H)


def make_model(kind: str, seed: int = 0) -> Seq2Seq:
    torch.manual_seed(seed)
    encoder = BiGRUEncoder(V_SRC, embed_dim=8, hidden_dim=A // 2)
    decoders = {
        "plain": lambda: PlainDecoder(V_TGT, A, embed_dim=8, hidden_dim=16, readout_dim=8),
        "bahdanau": lambda: BahdanauDecoder(V_TGT, A, embed_dim=8, hidden_dim=16, attention_dim=12, readout_dim=8),
        "dot:global": lambda: LuongDecoder(V_TGT, A, DotScore(), "global", embed_dim=8, hidden_dim=A),
        "general:local-m": lambda: LuongDecoder(V_TGT, A, BilinearScore(16, A), "local-m", window=2, embed_dim=8, hidden_dim=16),
        "concat:local-p": lambda: LuongDecoder(V_TGT, A, ConcatScore(16, A, 12), "local-p", window=2, embed_dim=8, hidden_dim=16),
        "general:global:no-feed": lambda: LuongDecoder(V_TGT, A, BilinearScore(16, A), "global", input_feeding=False,
                                                       embed_dim=8, hidden_dim=16),
    }
    return Seq2Seq(encoder, decoders[kind]()).eval()


ATTENTIVE = ["bahdanau", "dot:global", "general:local-m", "concat:local-p", "general:global:no-feed"]
ALL = ["plain"] + ATTENTIVE


def batch(lengths=(7, 3, 5), tgt_len=4, seed=1):
    gen = torch.Generator().manual_seed(seed)
    src, src_lengths = pad_batch([torch.randint(4, V_SRC, (n,), generator=gen).tolist() for n in lengths])
    tgt_in = torch.randint(4, V_TGT, (len(lengths), tgt_len), generator=gen)
    return src, src_lengths, tgt_in


# ----------------------------------------------------------------------------- encoder
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


# ----------------------------------------------------------------------------- decoders
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


def test_bahdanau_attention_follows_the_paper_term_by_term():
    model = make_model("bahdanau")
    dec = model.decoder
    src, lengths, _ = batch()
    enc = model.encoder(src, lengths)
    s_prev, keys = dec.init_state(enc)
    assert torch.allclose(s_prev, torch.tanh(dec.init(enc.annotations[:, 0, A // 2:])))  # s_0 = tanh(W_s h<-_1)
    _, weights = dec.attend(s_prev, keys, enc)
    W_a, U_a, v_a = dec.score.w_q.weight, dec.score.w_k.weight, dec.score.v.weight[0]
    b, n = 2, int(lengths[2])
    e = torch.stack([v_a @ torch.tanh(W_a @ s_prev[b] + U_a @ enc.annotations[b, j]) for j in range(n)])
    assert torch.allclose(weights[b, :n], torch.softmax(e, 0), atol=1e-6)


@pytest.mark.parametrize("kind,score", [("dot:global", "dot"), ("general:global:no-feed", "general")])
def test_luong_global_weights_are_softmax_of_the_score_of_the_current_state(kind, score):
    model = make_model(kind)
    dec = model.decoder
    src, lengths, tgt_in = batch()
    enc = model.encoder(src, lengths)
    state = dec.init_state(enc)
    _, (h, _, _), weights = dec.step(tgt_in[:, 0], state, enc)
    b, n = 0, int(lengths[0])
    if score == "dot":
        e = enc.annotations[b, :n] @ h[b]
    else:
        e = enc.annotations[b, :n] @ dec.score.w.weight.T @ h[b]
    assert torch.allclose(weights[b, :n], torch.softmax(e, 0), atol=1e-6)


# ----------------------------------------------------------------------------- local attention
def test_local_window_mask_maths():
    mask = local_window_mask(torch.tensor([2.4, 0.0, 9.0]), torch.tensor([6, 6, 4]), 6, half_width=1)
    assert mask[0].tolist() == [False, False, True, True, False, False]  # |s - 2.4| <= 1: s = 2, 3
    assert mask[1].tolist() == [True, True, False, False, False, False]
    assert mask[2].tolist() == [False, False, True, True, False, False]  # centre clipped to the last word (3)
    assert mask.any(1).all()


def test_gaussian_window_maths():
    g = gaussian_window(torch.tensor([2.0]), 5, sigma=1.5)
    expected = torch.tensor([math.exp(-((s - 2.0) ** 2) / (2 * 1.5**2)) for s in range(5)])
    assert torch.allclose(g[0], expected)
    assert g[0, 2] == 1.0


def test_local_p_weights_are_window_softmax_times_gaussian():
    model = make_model("concat:local-p")
    dec = model.decoder
    src, lengths, tgt_in = batch()
    enc = model.encoder(src, lengths)
    _, (h, _, _), weights = dec.step(tgt_in[:, 0], dec.init_state(enc), enc)
    p = dec.last_positions
    assert ((p >= 0) & (p <= lengths.float())).all(), "p_t = S sigmoid(.) lies in [0, S]"
    scores = dec.score(h[:, None, :], enc.annotations)[:, 0]
    allowed = local_window_mask(p, lengths, 7, 2)
    expected = attnlib.masked_softmax(scores, allowed) * gaussian_window(p, 7, 1.0)
    assert torch.allclose(weights, expected, atol=1e-6)
    assert torch.equal(weights[~allowed], torch.zeros(int((~allowed).sum())))


def test_local_m_centres_follow_the_target_position():
    model = make_model("general:local-m")
    src, lengths, tgt_in = batch(tgt_len=6)
    with attnlib.record_attention(model) as maps:
        model(src, lengths, tgt_in)
    for t, w in enumerate(maps["decoder"]):
        for b, n in enumerate(lengths.tolist()):
            centre = min(t, n - 1)
            outside = [s for s in range(7) if abs(s - centre) > 2 or s >= n]
            assert torch.equal(w[b, outside], torch.zeros(len(outside)))


def test_luong_rejects_bad_configuration():
    with pytest.raises(ValueError, match="attention must be one of"):
        LuongDecoder(V_TGT, A, DotScore(), "local")
    with pytest.raises(ValueError, match="window must be >= 0"):
        LuongDecoder(V_TGT, A, DotScore(), "local-m", window=-1)


# ----------------------------------------------------------------------------- decoding
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


# ----------------------------------------------------------------------------- pieces and metrics
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
    expected = torch.nn.functional.cross_entropy(torch.stack([logits[0, 0], logits[0, 1], logits[1, 0]]),
                                                 torch.tensor([1, 2, 3]))
    assert torch.allclose(sequence_loss(logits, targets), expected)


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


def test_training_on_dates_learns_to_align():
    """A few hundred steps: the attention mass on the correct source field rises far above
    the uniform level (the quick version of the chapter's experiment)."""
    src_vocab, tgt_vocab = date_vocabs()
    train, test = date_examples(1500, seed=0), date_examples(100, seed=1)
    torch.manual_seed(0)
    model = Seq2Seq(BiGRUEncoder(len(src_vocab), 16, 32), BahdanauDecoder(len(tgt_vocab), 64, 16, 64, 32, 32))
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    for epoch in range(4):
        for start in range(0, len(train), 50):
            loss = model.loss(encode_dates(train[start : start + 50], src_vocab, tgt_vocab))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    b = encode_dates(test, src_vocab, tgt_vocab)
    hyps = greedy_decode(model, b.src, b.src_lengths, max_len=12)
    aligned = sum(alignment_accuracy(h.alignment, e.spans) for h, e in zip(hyps, test)) / len(test)
    chance = sum(uniform_alignment_accuracy(len(e.source) + 1, e.spans) for e in test) / len(test)
    assert aligned > chance + 0.25, f"alignment {aligned:.2f} vs uniform {chance:.2f}"
