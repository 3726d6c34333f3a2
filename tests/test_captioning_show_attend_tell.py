"""attnlib.captioning.show_attend_tell: the attention decoder of Show, Attend and Tell."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

import attnlib
from attnlib.captioning import ShowAttendTell, ShowAttendTellConfig, caption_nll

SMALL = ShowAttendTellConfig(
    image_size=16, encoder_channels=(4, 6), embed_dim=8, hidden_dim=12, attention_dim=10
)  # a 4 x 4 grid (L = 16) of D = 6 features


def make(attention: str = "soft", seed: int = 0, **overrides: object) -> ShowAttendTell:
    torch.manual_seed(seed)
    return ShowAttendTell(replace(SMALL, attention=attention, **overrides))


def batch(b: int = 3, t: int = 5, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(b, 1, 16, 16, generator=gen), torch.randint(3, 16, (b, t), generator=gen)


@pytest.mark.parametrize("attention", ["soft", "hard"])
@pytest.mark.parametrize("b,t", [(1, 1), (3, 5), (2, 11)])
def test_output_shapes(attention, b, t):
    model = make(attention).train()
    images, captions = batch(b, t)
    out = model(images, captions)
    assert model.grid == (4, 4)
    assert out.logits.shape == (b, t, 16) and out.alphas.shape == (b, t, 16) and out.betas.shape == (b, t)
    if attention == "hard":
        assert out.locations.shape == (b, t) and out.location_log_probs.shape == (b, t)
    else:
        assert out.locations is None and out.location_log_probs is None


@pytest.mark.parametrize("attention", ["soft", "hard"])
def test_alpha_sums_to_one_over_the_grid_and_beta_is_one_scalar_per_step(attention):
    out = make(attention)(*batch())
    assert torch.allclose(out.alphas.sum(-1), torch.ones(3, 5), atol=1e-6)
    assert (out.alphas >= 0).all()
    assert out.betas.shape == (3, 5) and ((out.betas > 0) & (out.betas < 1)).all()


def test_without_the_gate_beta_is_one():
    out = make(gate=False)(*batch())
    assert torch.equal(out.betas, torch.ones(3, 5))


def test_soft_context_is_the_gated_expectation_of_the_annotations():
    """Recompute step 1 by hand: z = beta * sum_i alpha_i a_i feeds the deep output with E y_0 and h_1."""
    model = make()
    images, captions = batch(2, 1)
    out = model(images, captions)
    annotations, _ = model.encode(images)  # (2, L, D)
    h0, c0 = model.start(annotations)
    alpha = out.alphas[:, 0]  # (2, L)
    z = torch.sigmoid(model.gate(h0))[:, 0, None] * (alpha[:, :, None] * annotations).sum(1)  # (2, D)
    y0 = model.embedding(torch.full((2,), model.config.bos_id))
    h1, _ = model.lstm(torch.cat([y0, z], -1), (h0, c0))
    expected = model.out(y0 + model.out_h(h1) + model.out_z(z))
    assert torch.allclose(out.logits[:, 0], expected, atol=1e-6), f"{(out.logits[:, 0] - expected).abs().max()}"


def test_hard_context_is_the_chosen_annotation():
    model = make("hard").eval()
    images, captions = batch(2, 1)
    out = model(images, captions, location="argmax")
    annotations, _ = model.encode(images)
    assert torch.equal(out.locations[:, 0], out.alphas[:, 0].argmax(-1))
    h0, c0 = model.start(annotations)
    z = torch.sigmoid(model.gate(h0))[:, 0, None] * annotations[torch.arange(2), out.locations[:, 0]]
    y0 = model.embedding(torch.full((2,), model.config.bos_id))
    h1, _ = model.lstm(torch.cat([y0, z], -1), (h0, c0))
    assert torch.allclose(out.logits[:, 0], model.out(y0 + model.out_h(h1) + model.out_z(z)), atol=1e-6)
    assert torch.allclose(out.location_log_probs[:, 0], out.alphas[:, 0].max(-1).values.log(), atol=1e-6)


def test_hard_samples_are_one_hot_maps_whose_average_approaches_alpha():
    model = make("hard").train()
    images, captions = batch(1, 2)
    annotations, projected = model.encode(images)
    state = model.start(annotations)
    gen = torch.Generator().manual_seed(0)
    previous = torch.full((4000,), model.config.bos_id)
    with torch.no_grad():
        out = model.step(
            previous,
            (state[0].expand(4000, -1), state[1].expand(4000, -1)),
            annotations.expand(4000, -1, -1),
            projected.expand(4000, -1, -1),
            generator=gen,
        )
    one_hot = torch.nn.functional.one_hot(out.location, 16).float()  # (4000, L): each row one-hot
    assert torch.equal(one_hot.sum(-1), torch.ones(4000))
    err = (one_hot.mean(0) - out.alpha[0]).abs().max().item()
    assert err < 0.03, f"empirical frequencies differ from alpha by {err:.3f}"


def test_expectation_location_makes_the_hard_model_compute_the_soft_context():
    hard, soft = make("hard", seed=3), make("soft", seed=3)
    images, captions = batch()
    assert torch.allclose(hard(images, captions, location="expectation").logits, soft(images, captions).logits)


def test_teacher_forcing_feeds_the_previous_target_token():
    """Changing the last target token changes nothing; changing the first changes the later steps."""
    model = make()
    images, captions = batch(2, 4)
    base = model(images, captions).logits
    last, first = captions.clone(), captions.clone()
    last[:, -1] = (last[:, -1] - 3 + 1) % 13 + 3
    first[:, 0] = (first[:, 0] - 3 + 1) % 13 + 3
    assert torch.equal(model(images, last).logits, base)
    changed = model(images, first).logits
    assert torch.equal(changed[:, 0], base[:, 0]) and not torch.allclose(changed[:, 1:], base[:, 1:])


def test_precomputed_encoder_features_give_the_same_output():
    model = make()
    images, captions = batch()
    with torch.no_grad():
        assert torch.equal(model(model.encoder(images), captions).logits, model(images, captions).logits)


def test_each_step_emits_its_attention_map():
    model = make()
    images, captions = batch(2, 4)
    with attnlib.record_attention(model) as maps:
        out = model(images, captions)
    assert maps.names() == ["attention"]
    assert torch.allclose(maps.stacked("attention", dim=1), out.alphas.detach())


def test_caption_nll_skips_padding():
    logits = torch.randn(2, 3, 16)
    captions = torch.tensor([[5, 2, 0], [4, 6, 2]])
    nll = caption_nll(logits, captions)
    lp = logits.log_softmax(-1)
    expected = torch.stack([-(lp[0, 0, 5] + lp[0, 1, 2]), -(lp[1, 0, 4] + lp[1, 1, 6] + lp[1, 2, 2])])
    assert torch.allclose(nll, expected)


@pytest.mark.parametrize(
    "inputs,captions,message",
    [
        (
            torch.rand(2, 1, 20, 20),
            torch.ones(2, 3, dtype=torch.long),
            r"images must be \(B, 1, 16, 16\); got \(2, 1, 20, 20\)",
        ),
        (torch.rand(2, 9, 6), torch.ones(2, 3, dtype=torch.long), r"\(B, 16, 6\) for the 4 x 4 grid; got \(2, 9, 6\)"),
        (
            torch.rand(2, 1, 16, 16),
            torch.ones(2, 12, dtype=torch.long),
            r"at most max_caption_length = 11 tokens; got \(2, 12\)",
        ),
        (torch.rand(2, 1, 16, 16), torch.full((2, 3), 20), r"in \[0, vocab_size = 16\); got ids from 20 to 20"),
        (torch.rand(2, 1, 16, 16), torch.ones(2, 3), "must be int64 token ids; got dtype torch.float32"),
        (torch.rand(2, 1, 16, 16), torch.ones(3, 3, dtype=torch.long), "B = 2 rows like the images"),
    ],
)
def test_bad_input_raises_a_clear_error(inputs, captions, message):
    with pytest.raises(ValueError, match=message):
        make()(inputs, captions)


def test_bad_config_and_location_raise():
    with pytest.raises(ValueError, match="attention must be 'soft' or 'hard'; got 'sharp'"):
        ShowAttendTellConfig(attention="sharp")
    with pytest.raises(ValueError, match="divisible by 2 \\*\\* len\\(encoder_channels\\) = 4; got 18"):
        make(image_size=18)
    with pytest.raises(ValueError, match="location must be one of"):
        make("hard")(*batch(), location="mode")
