"""attnlib.captioning.hard_attention_loss: REINFORCE for hard attention, and who learns from what."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from attnlib.captioning import (
    MovingAverageBaseline,
    ShowAttendTell,
    ShowAttendTellConfig,
    attention_entropy,
    hard_attention_loss,
)

SMALL = ShowAttendTellConfig(
    image_size=16, encoder_channels=(4, 6), embed_dim=8, hidden_dim=12, attention_dim=10, attention="hard"
)
PARTS = {
    "encoder": "encoder.",
    "positions": "positions",
    "attention": "attention.",
    "gate": "gate.",
    "lstm": "lstm.",
    "init": "init_",
    "embedding": "embedding.",
    "output": "out",
}


def batch(b: int = 4, t: int = 5, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    captions = torch.randint(3, 16, (b, t), generator=gen)
    captions[0, -2:] = torch.tensor([2, 0])  # one caption ends early: <eos>, then a pad
    return torch.rand(b, 1, 16, 16, generator=gen), captions


def who_learns(expectation_prob: float) -> dict[str, dict[str, bool]]:
    """For each term of the hard objective alone, which parts of the model receive a gradient."""
    torch.manual_seed(0)
    model = ShowAttendTell(SMALL).train()
    images, captions = batch()
    baseline = MovingAverageBaseline()
    baseline.value.fill_(-30.0)  # far from the rewards, so the advantage is never zero
    table = {}
    for term in ("likelihood", "reinforce", "entropy"):
        model.zero_grad()
        loss = hard_attention_loss(
            model,
            images,
            captions,
            baseline,
            expectation_prob=expectation_prob,
            generator=torch.Generator().manual_seed(1),
        )
        value = getattr(loss, term)
        if value.requires_grad:
            value.backward()
        table[term] = {
            part: any(
                p.grad is not None and p.grad.abs().sum() > 0
                for name, p in model.named_parameters()
                if name.startswith(prefix)
            )
            for part, prefix in PARTS.items()
        }
    return table


def test_who_learns_from_what_on_a_sampled_pass():
    table = who_learns(expectation_prob=0.0)
    # the likelihood cannot reach f_att through a discrete sample, and reaches everything else
    assert table["likelihood"] == {**{part: True for part in PARTS}, "attention": False}
    # REINFORCE and the entropy reach everything that shapes alpha, and not the output layer
    for term in ("reinforce", "entropy"):
        assert table[term]["attention"] and table[term]["encoder"] and table[term]["lstm"], term
        assert not table[term]["output"], term


def test_on_an_expectation_pass_the_likelihood_trains_f_att_and_reinforce_is_zero():
    table = who_learns(expectation_prob=1.0)
    assert table["likelihood"]["attention"]
    assert not any(table["reinforce"].values())


def test_terms_on_a_sampled_pass_match_their_formulas():
    torch.manual_seed(0)
    model = ShowAttendTell(SMALL).train()
    images, captions = batch()
    baseline = MovingAverageBaseline()
    baseline.value.fill_(-20.0)
    loss = hard_attention_loss(
        model,
        images,
        captions,
        baseline,
        reinforce_weight=0.5,
        entropy_weight=0.1,
        expectation_prob=0.0,
        generator=torch.Generator().manual_seed(2),
    )
    assert not loss.expectation and loss.baseline.item() == -20.0
    assert loss.likelihood.item() == pytest.approx(-loss.reward.mean().item(), rel=1e-6)
    assert baseline.value.item() == pytest.approx(0.9 * -20.0 + 0.1 * loss.reward.mean().item(), rel=1e-6)
    expected_total = loss.likelihood + 0.5 * loss.reinforce - 0.1 * loss.entropy
    assert torch.allclose(loss.total, expected_total)


def test_reinforce_term_is_the_advantage_weighted_log_probability_of_the_samples():
    torch.manual_seed(0)
    model = ShowAttendTell(SMALL).train()
    images, captions = batch()
    baseline = MovingAverageBaseline()
    baseline.value.fill_(-25.0)
    loss = hard_attention_loss(
        model, images, captions, baseline, expectation_prob=0.0, generator=torch.Generator().manual_seed(3)
    )
    gen = torch.Generator().manual_seed(3)
    torch.rand((), generator=gen)  # the coin, drawn first
    out = model(images, captions, location="sample", generator=gen)  # so the same samples follow
    mask = captions != 0
    log_p = (out.location_log_probs * mask).sum(1)  # (B,): log p(s~ | a) over the real steps
    expected = -((loss.reward + 25.0) * log_p).mean()
    assert torch.allclose(loss.reinforce, expected, atol=1e-5), f"{loss.reinforce.item()} != {expected.item()}"


def test_the_coin_uses_the_expectation_about_half_the_time():
    torch.manual_seed(0)
    model = ShowAttendTell(SMALL).train()
    images, captions = batch(2, 3)
    gen = torch.Generator().manual_seed(4)
    baseline = MovingAverageBaseline()
    flags = [hard_attention_loss(model, images, captions, baseline, generator=gen).expectation for _ in range(200)]
    assert 70 < sum(flags) < 130


def test_moving_average_baseline_follows_the_paper_s_rule():
    baseline = MovingAverageBaseline()
    baseline.update(torch.tensor([-10.0, -30.0]))  # mean -20
    assert baseline.value.item() == pytest.approx(0.1 * -20.0)
    baseline.update(torch.tensor([-10.0]))
    assert baseline.value.item() == pytest.approx(0.9 * -2.0 + 0.1 * -10.0)
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\); got 1.0"):
        MovingAverageBaseline(1.0)


def test_attention_entropy_on_hand_made_maps():
    alphas = torch.tensor([[[0.25, 0.25, 0.25, 0.25], [1.0, 0.0, 0.0, 0.0]]])
    assert attention_entropy(alphas).item() == pytest.approx(torch.log(torch.tensor(4.0)).item())
    assert attention_entropy(alphas, torch.tensor([[False, True]])).item() == pytest.approx(0.0)


def test_a_soft_model_is_refused():
    model = ShowAttendTell(replace(SMALL, attention="soft"))
    with pytest.raises(ValueError, match="needs a model with attention='hard'; got 'soft'"):
        hard_attention_loss(model, *batch(), MovingAverageBaseline())
