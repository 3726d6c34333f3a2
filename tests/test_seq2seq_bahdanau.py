"""attnlib.seq2seq.bahdanau: the decoder with additive attention."""

from __future__ import annotations

import torch
from conftest import A, batch, make_model

from attnlib.data.dates import date_examples, date_vocabs, encode_dates
from attnlib.seq2seq import (
    BahdanauDecoder,
    BiGRUEncoder,
    Seq2Seq,
    alignment_accuracy,
    greedy_decode,
    uniform_alignment_accuracy,
)

torch.set_num_threads(1)  # tiny sequential ops: one thread is faster and deterministic


def test_bahdanau_attention_follows_the_paper_term_by_term():
    model = make_model("bahdanau")
    dec = model.decoder
    src, lengths, _ = batch()
    enc = model.encoder(src, lengths)
    s_prev, keys = dec.init_state(enc)
    assert torch.allclose(s_prev, torch.tanh(dec.init(enc.annotations[:, 0, A // 2 :])))  # s_0 = tanh(W_s h<-_1)
    _, weights = dec.attend(s_prev, keys, enc)
    W_a, U_a, v_a = dec.score.w_q.weight, dec.score.w_k.weight, dec.score.v.weight[0]
    b, n = 2, int(lengths[2])
    e = torch.stack([v_a @ torch.tanh(W_a @ s_prev[b] + U_a @ enc.annotations[b, j]) for j in range(n)])
    assert torch.allclose(weights[b, :n], torch.softmax(e, 0), atol=1e-6)


def test_training_on_dates_learns_to_align():
    """A few hundred steps: the attention mass on the correct source field rises far above
    the uniform level (the quick version of the chapter's experiment)."""
    src_vocab, tgt_vocab = date_vocabs()
    train, test = date_examples(1500, seed=0), date_examples(100, seed=1)
    torch.manual_seed(0)
    model = Seq2Seq(BiGRUEncoder(len(src_vocab), 16, 32), BahdanauDecoder(len(tgt_vocab), 64, 16, 64, 32, 32))
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    for _epoch in range(4):
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
