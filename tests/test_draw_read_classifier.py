"""attnlib.draw.read_classifier: classifying from DRAW's Gaussian glimpses, trained by backprop alone."""

from __future__ import annotations

import pytest
import torch

import attnlib
from attnlib.draw import DRAWReadClassifier, ReadClassifierConfig

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = dict(height=20, width=20, read_n=4, num_glimpses=3, hidden_size=16, num_classes=2)


def corner_task(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A small bright square in the top-left (class 0) or bottom-right (class 1) corner."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n,), generator=gen)
    images = torch.rand(n, 1, 20, 20, generator=gen) * 0.1
    for i, y in enumerate(labels.tolist()):
        images[i, 0, 2 + 13 * y : 5 + 13 * y, 2 + 13 * y : 5 + 13 * y] = 1.0
    return images, labels


def test_shapes_and_recorded_windows():
    torch.manual_seed(0)
    model = DRAWReadClassifier(ReadClassifierConfig(**SMALL))
    with attnlib.record_attention(model) as maps:
        logits = model(torch.rand(5, 1, 20, 20))
    assert logits.shape == (5, 2)
    assert maps.names() == ["read"] and maps.stacked("read", dim=1).shape == (5, 3, 5)


def test_where_to_look_is_trained_by_backprop():
    """Cross-entropy alone sends a gradient into the window layer (no REINFORCE term)."""
    torch.manual_seed(1)
    model = DRAWReadClassifier(ReadClassifierConfig(**SMALL))
    x, y = corner_task(8, 0)
    torch.nn.functional.cross_entropy(model(x), y).backward()
    grad = model.read.window.linear.weight.grad
    assert grad is not None and (grad.abs().sum(1) > 0).all(), grad


def test_learns_a_task_that_needs_looking():
    torch.manual_seed(2)
    model = DRAWReadClassifier(ReadClassifierConfig(**SMALL))
    x, y = corner_task(512, 1)
    x_test, y_test = corner_task(200, 2)
    attnlib.train_classifier(
        model, x, y, steps=60, batch_size=32, lr=1e-2, generator=torch.Generator().manual_seed(0), device="cpu"
    )
    assert attnlib.accuracy(model, x_test, y_test) > 0.95


def test_a_frozen_window_stays_at_the_initial_grid_for_every_image_and_step():
    """learn_window=False: W = 0 and frozen, so training moves no window; the LSTM still learns."""
    torch.manual_seed(3)
    model = DRAWReadClassifier(ReadClassifierConfig(**SMALL, learn_window=False))
    x, y = corner_task(256, 3)
    with attnlib.record_attention(model) as before:
        model(x[:6])
    lstm_before = model.core.weight_ih.detach().clone()
    attnlib.train_classifier(
        model, x, y, steps=20, batch_size=32, lr=1e-2, generator=torch.Generator().manual_seed(0), device="cpu"
    )
    with attnlib.record_attention(model) as after:
        model(x[:6])
    windows = after.stacked("read", dim=1)  # (6, T, 5)
    assert torch.equal(windows, before.stacked("read", dim=1))  # training moved nothing
    assert torch.allclose(windows, windows[:1, :1].expand_as(windows))  # one window for every image and step
    initial = DRAWReadClassifier(ReadClassifierConfig(**SMALL)).read.window(torch.zeros(1, 16)).as_tensor()
    assert torch.allclose(windows[0, 0], initial[0])  # the learned model's initial first window
    assert not torch.equal(model.core.weight_ih, lstm_before)  # the rest of the model did learn


def test_bad_input():
    model = DRAWReadClassifier(ReadClassifierConfig(**SMALL))
    with pytest.raises(ValueError, match=r"images must have shape \(B, 1, 20, 20\); got \(2, 1, 20, 21\)"):
        model(torch.zeros(2, 1, 20, 21))
    with pytest.raises(ValueError, match="floating-point"):
        model(torch.zeros(2, 1, 20, 20, dtype=torch.long))
    with pytest.raises(ValueError, match="one channel; got channels=3"):
        DRAWReadClassifier(ReadClassifierConfig(**{**SMALL, "channels": 3}))
    with pytest.raises(ValueError, match="num_glimpses must be >= 1"):
        DRAWReadClassifier(ReadClassifierConfig(**{**SMALL, "num_glimpses": 0}))
