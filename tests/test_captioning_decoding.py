"""attnlib.captioning.decoding: greedy decoding and beam search with per-word attention maps."""

from __future__ import annotations

import pytest
import torch

import attnlib
from attnlib.captioning import ShowAttendTell, ShowAttendTellConfig, beam_caption, greedy_caption

SMALL = ShowAttendTellConfig(image_size=16, encoder_channels=(4, 6), embed_dim=8, hidden_dim=12, attention_dim=10)


def model_and_images(seed: int = 0, b: int = 3) -> tuple[ShowAttendTell, torch.Tensor]:
    torch.manual_seed(seed)
    model = ShowAttendTell(SMALL).eval()
    with torch.no_grad():
        model.out.bias[2] -= 2.0  # make <eos> unlikely at first, so captions have a few words
    return model, torch.rand(b, 1, 16, 16, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_greedy_maps_and_scores_match_a_teacher_forced_pass_on_its_own_output(seed):
    model, images = model_and_images(seed)
    captions = greedy_caption(model, images)
    for i, caption in enumerate(captions):
        n = len(caption.tokens)
        assert caption.maps.shape == (n, 4, 4) and caption.betas.shape == (n,)
        assert torch.allclose(caption.maps.sum((1, 2)), torch.ones(n), atol=1e-6)
        assert caption.tokens[-1] == 2 or n == SMALL.max_caption_length
        with torch.no_grad():
            out = model(images[i : i + 1], torch.tensor([caption.tokens]))
        assert torch.allclose(caption.maps.flatten(1), out.alphas[0], atol=1e-6)
        assert torch.allclose(caption.betas, out.betas[0], atol=1e-6)
        assert out.logits[0].argmax(-1).tolist() == caption.tokens  # each token was the best one
        log_p = out.logits[0].log_softmax(-1).gather(1, torch.tensor(caption.tokens)[:, None]).sum()
        assert caption.log_prob == pytest.approx(log_p.item(), abs=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_beam_of_one_is_greedy(seed):
    model, images = model_and_images(seed, b=1)
    greedy = greedy_caption(model, images)[0]
    beam = beam_caption(model, images, beam_size=1)
    assert beam.tokens == greedy.tokens and torch.allclose(beam.maps, greedy.maps, atol=1e-6)
    assert beam.log_prob == pytest.approx(greedy.log_prob, abs=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_a_wider_beam_never_finds_a_less_likely_finished_caption(seed):
    model, images = model_and_images(seed, b=1)
    narrow, wide = beam_caption(model, images, beam_size=1), beam_caption(model, images, beam_size=4)
    if narrow.tokens[-1] == 2 and wide.tokens[-1] == 2:
        assert wide.log_prob >= narrow.log_prob - 1e-5
    assert wide.maps.shape == (len(wide.tokens), 4, 4)


def test_decoding_emits_one_map_per_step():
    model, images = model_and_images(b=2)
    with attnlib.record_attention(model) as maps:
        greedy_caption(model, images, max_len=5)
    assert len(maps["attention"]) == 5 and maps.last("attention").shape == (2, 16)


def test_bad_arguments_raise():
    model, images = model_and_images()
    with pytest.raises(ValueError, match="max_len must be between 1 and max_caption_length = 11; got 12"):
        greedy_caption(model, images, max_len=12)
    with pytest.raises(ValueError, match=r"one image \(1, C, H, W\) or its features \(1, L, D\)"):
        beam_caption(model, images)
    with pytest.raises(ValueError, match="beam_size must be >= 1; got 0"):
        beam_caption(model, images[:1], beam_size=0)
    with pytest.raises(ValueError, match=r"images must be \(B, 1, 16, 16\)"):
        greedy_caption(model, torch.rand(1, 1, 8, 8))
