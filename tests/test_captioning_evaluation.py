"""attnlib.captioning.evaluation: exact match, BLEU and the localisation score of a captioner."""

from __future__ import annotations

import pytest
import torch

from attnlib.captioning import ShowAttendTell, ShowAttendTellConfig, caption_report, greedy_caption
from attnlib.data import decode_caption, digit_caption_scenes, localisation_score

CONFIG = ShowAttendTellConfig(encoder_channels=(4, 4, 4), embed_dim=8, hidden_dim=16, attention_dim=8)


def scenes(n: int = 12):
    gen = torch.Generator().manual_seed(0)
    digits = torch.randint(64, 256, (20, 28, 28), generator=gen, dtype=torch.uint8)
    return digit_caption_scenes(digits, torch.arange(20) % 10, n, seed=3)


@pytest.mark.parametrize("attention", ["soft", "hard"])
def test_report_agrees_with_its_definitions(attention):
    torch.manual_seed(0)
    model = ShowAttendTell(ShowAttendTellConfig(**{**CONFIG.__dict__, "attention": attention})).eval()
    data = scenes()
    report = caption_report(model, data.images, data, batch_size=5)
    greedy = [decode_caption(c.tokens) for c in greedy_caption(model, data.images)]
    truth = [decode_caption(c) for c in data.captions]
    assert report["exact_match"] == sum(g == t for g, t in zip(greedy, truth)) / len(truth)
    with torch.no_grad():
        alphas = model(data.images, data.captions).alphas
    expected = localisation_score(alphas, data.boxes, data.word_digit, canvas=48)
    for key in ("share", "hit_rate", "uniform_share", "uniform_hit_rate", "words"):
        assert report[key] == pytest.approx(expected[key]), key
    assert 0.0 <= report["bleu"] <= 100.0


def test_a_model_that_copies_the_reference_scores_perfect_bleu_and_exact_match(monkeypatch):
    """Replace greedy decoding by the references: exact match 1 and BLEU 100, so both are computed on words."""
    import attnlib.captioning.evaluation as evaluation

    data = scenes()
    monkeypatch.setattr(
        evaluation,
        "greedy_caption",
        lambda model, chunk, location=None: [
            type("C", (), {"tokens": data.captions[i].tolist()})() for i in range(len(chunk))
        ],
    )
    report = caption_report(ShowAttendTell(CONFIG).eval(), data.images, data, batch_size=100)
    assert report["exact_match"] == 1.0 and report["bleu"] == pytest.approx(100.0)
