"""attnlib.captioning.training: the training loop on a frozen encoder's features."""

from __future__ import annotations

import pytest
import torch

from attnlib.captioning import ShowAttendTell, ShowAttendTellConfig, train_captioner

SMALL = dict(image_size=16, encoder_channels=(4, 6), embed_dim=8, hidden_dim=16, attention_dim=8)


def data(n: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    features = torch.rand(n, 16, 6, generator=gen)
    captions = torch.randint(3, 16, (n, 4), generator=gen)
    captions[:, -1] = 2
    captions[0, 2:] = torch.tensor([2, 0])  # a shorter caption, padded
    lengths = (captions != 0).sum(1)
    return features, captions, lengths


def test_soft_training_fits_a_few_captions_and_leaves_the_frozen_encoder_alone():
    torch.manual_seed(0)
    model = ShowAttendTell(ShowAttendTellConfig(**SMALL))
    model.encoder.requires_grad_(False)
    before = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    features, captions, lengths = data()
    log = train_captioner(
        model,
        features,
        captions,
        lengths,
        steps=80,
        batch_size=8,
        lr=1e-2,
        generator=torch.Generator().manual_seed(0),
        show_progress=False,
    )
    assert set(log) == {"likelihood", "penalty"} and all(len(v) == 80 for v in log.values())
    assert sum(log["likelihood"][-5:]) < 0.3 * sum(log["likelihood"][:5])
    assert all(torch.equal(before[k], v) for k, v in model.encoder.state_dict().items())
    assert not model.training


def test_hard_training_logs_every_term_and_uses_the_expectation_on_some_steps():
    torch.manual_seed(0)
    model = ShowAttendTell(ShowAttendTellConfig(attention="hard", **SMALL))
    model.encoder.requires_grad_(False)
    log = train_captioner(
        model, *data(), steps=30, batch_size=4, generator=torch.Generator().manual_seed(1), show_progress=False
    )
    assert set(log) == {"likelihood", "reinforce", "entropy", "reward", "baseline", "expectation"}
    assert all(len(v) == 30 for v in log.values())
    assert 0 < sum(log["expectation"]) < 30
    sampled = [r for r, e in zip(log["reinforce"], log["expectation"]) if e]
    assert all(r == 0.0 for r in sampled)  # no REINFORCE term on an expectation pass


def test_same_seed_same_run():
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = ShowAttendTell(ShowAttendTellConfig(attention="hard", **SMALL))
        runs.append(
            train_captioner(
                model, *data(), steps=10, batch_size=4, generator=torch.Generator().manual_seed(2), show_progress=False
            )
        )
    assert runs[0] == runs[1]


def test_bad_arguments_raise():
    model = ShowAttendTell(ShowAttendTellConfig(**SMALL))
    features, captions, lengths = data()
    with pytest.raises(ValueError, match="steps must be >= 1; got 0"):
        train_captioner(model, features, captions, lengths, steps=0)
    with pytest.raises(ValueError, match="must share their first dimension N"):
        train_captioner(model, features[:5], captions, lengths, steps=1)
