"""attnlib.data.digit_videos: cluttered clips whose label is decided by one frame."""

import pytest
import torch

from attnlib.data import digit_videos, frame_attention_share


def pool(m: int = 20) -> tuple[torch.Tensor, torch.Tensor]:
    labels = torch.arange(m) % 10
    digits = torch.zeros(m, 28, 28, dtype=torch.uint8)
    digits[:, 4:24, 4:24] = 200
    return digits, labels


def test_shapes_purity_and_the_deciding_frame():
    digits, labels = pool()
    data = digit_videos(digits, labels, 6, seed=2, frames=5, size=24, digit_size=12, clutter=0)
    assert data.videos.shape == (6, 5, 1, 24, 24) and data.boxes.shape == (6, 5, 4)
    again = digit_videos(digits, labels, 3, seed=2, frames=5, size=24, digit_size=12, clutter=0)
    assert torch.equal(data.videos[:3], again.videos) and torch.equal(data.key_frames[:3], again.key_frames)
    ink = data.videos.flatten(2).sum(-1)  # (N, T): without clutter only the deciding frame has ink
    assert torch.equal(ink.argmax(1), data.key_frames) and int((ink > 0).sum()) == 6
    for n in range(6):
        x, y, w, h = data.boxes[n, int(data.key_frames[n])].tolist()
        frame = data.videos[n, int(data.key_frames[n]), 0]
        assert frame[y : y + h, x : x + w].sum() == frame.sum() > 0  # all the ink inside the box


def test_the_digit_moves_in_a_straight_line():
    digits, labels = pool()
    boxes = digit_videos(digits, labels, 4, seed=0, frames=6, size=32, digit_size=14).boxes.float()
    steps = boxes[:, 1:, :2] - boxes[:, :-1, :2]  # (N, T-1, 2)
    assert (steps - steps.mean(1, keepdim=True)).abs().max() <= 1.0  # constant velocity up to rounding


def test_frame_attention_share():
    weights = torch.tensor([[0.1, 0.7, 0.2], [1 / 3, 1 / 3, 1 / 3]])
    assert torch.allclose(frame_attention_share(weights, torch.tensor([1, 0])), torch.tensor([0.7, 1 / 3]))
    with pytest.raises(ValueError, match="lie in 0..2"):
        frame_attention_share(weights, torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="int64"):
        frame_attention_share(weights, torch.tensor([0.0, 1.0]))


def test_bad_input():
    digits, labels = pool()
    with pytest.raises(ValueError, match="digit_size"):
        digit_videos(digits, labels, 2, size=10, digit_size=14)
    with pytest.raises(ValueError, match="uint8 MNIST"):
        digit_videos(digits[:, :20], labels, 2)
