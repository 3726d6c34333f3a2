"""attnlib.seq2seq.luong: global and local attention."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import V_TGT, A, batch, make_model

import attnlib
from attnlib.scoring import DotScore
from attnlib.seq2seq import LuongDecoder, gaussian_window, local_window_mask

torch.set_num_threads(1)  # tiny sequential ops: one thread is faster and deterministic


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
    with attnlib.record_attention(model) as maps:
        _, (h, _, _), weights = dec.step(tgt_in[:, 0], dec.init_state(enc), enc)
    assert sorted(maps.names()) == ["decoder", "decoder.positions"]
    p = maps.last("decoder.positions")
    assert p.shape == (lengths.shape[0],)
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
