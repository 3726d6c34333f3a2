"""Digit strips and two-digit scenes: purity in (seed, index), spans, the bigram chain, occlusion, scoring."""

from __future__ import annotations

import pytest
import torch

from attnlib.data import (
    digit_pair_scenes,
    digit_strips,
    occlude_digit,
    span_attention_share,
    successor_bigram,
)


def pool(m: int = 200, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Fake MNIST: each digit a solid 20 x 20 square (so ink fills its span) with random labels."""
    g = torch.Generator().manual_seed(seed)
    digits = torch.zeros(m, 28, 28, dtype=torch.uint8)
    digits[:, 4:24, 4:24] = torch.randint(100, 256, (m, 1, 1), generator=g, dtype=torch.uint8)
    return digits, torch.arange(m) % 10


@pytest.mark.parametrize("num_digits", [(3, 6), (4, 4)])
def test_strips_shapes_lengths_and_spans(num_digits: tuple[int, int]) -> None:
    digits, labels = pool()
    s = digit_strips(digits, labels, 30, seed=3, num_digits=num_digits)
    n, k = 30, num_digits[1]
    assert s.images.shape[:2] == (n, 1) and s.images.shape[2] == 16 and s.images.shape[3] % 4 == 0
    assert s.labels.shape == (n, k) and s.spans.shape == (n, k, 2)
    assert bool(((s.lengths >= num_digits[0]) & (s.lengths <= num_digits[1])).all())
    for i in range(n):
        L = int(s.lengths[i])
        assert bool((s.labels[i, :L] >= 0).all()) and bool((s.labels[i, L:] == -1).all())
        x0, x1 = s.spans[i, :L, 0], s.spans[i, :L, 1]
        assert bool((x1 > x0).all()) and bool((x0[1:] >= x1[:-1]).all()), "digits left to right, not overlapping"
        ink = s.images[i, 0].amax(0) > 0  # (W,) columns with ink
        inside = torch.zeros_like(ink)
        for a, b in zip(x0.tolist(), x1.tolist()):
            inside[a:b] = True
        assert bool((ink == inside).all()), "ink exactly within the spans"


def test_strips_are_a_pure_function_of_seed_and_index() -> None:
    digits, labels = pool()
    a = digit_strips(digits, labels, 6, seed=5, num_digits=(3, 5))
    b = digit_strips(digits, labels, 3, seed=5, num_digits=(3, 5))
    c = digit_strips(digits, labels, 6, seed=6, num_digits=(3, 5))
    assert torch.equal(a.images[:3], b.images) and torch.equal(a.labels[:3], b.labels)
    assert not torch.equal(a.images, c.images)


def test_labels_match_the_drawn_digits() -> None:
    digits, labels = pool()
    digits[:, 4:24, 4:24] = (labels * 20 + 50).to(torch.uint8)[:, None, None]  # brightness codes the class
    s = digit_strips(digits, labels, 10, seed=0, num_digits=(3, 3), scale_noise=0, jitter=0)
    for i in range(10):
        for j in range(3):
            x0 = int(s.spans[i, j, 0])
            value = float(s.images[i, 0, 8, x0 + 6]) * 255
            assert round((value - 50) / 20) == int(s.labels[i, j])


def test_bigram_chain_is_followed() -> None:
    digits, labels = pool()
    s = digit_strips(digits, labels, 300, seed=0, num_digits=(6, 6), bigram=successor_bigram(1.0))
    assert bool((s.labels[:, 1:] == (s.labels[:, :-1] + 1) % 10).all())
    u = digit_strips(digits, labels, 300, seed=0, num_digits=(6, 6))
    share = float((u.labels[:, 1:] == (u.labels[:, :-1] + 1) % 10).float().mean())
    assert share < 0.2


def test_successor_bigram_rows_sum_to_one_and_errors() -> None:
    table = successor_bigram(0.5)
    assert torch.allclose(table.sum(1), torch.ones(10)) and float(table[3, 4]) == pytest.approx(0.55)
    with pytest.raises(ValueError, match="strength must be in"):
        successor_bigram(1.5)


def test_occlusion_blanks_exactly_one_span() -> None:
    digits, labels = pool()
    s = digit_strips(digits, labels, 8, seed=1, num_digits=(4, 4))
    hidden = occlude_digit(s, 2)
    for i in range(8):
        a, b = s.spans[i, 2].tolist()
        assert float(hidden[i, 0, :, a:b].abs().sum()) == 0.0
        assert torch.equal(hidden[i, 0, :, :a], s.images[i, 0, :, :a])
    with pytest.raises(ValueError, match="position must lie in"):
        occlude_digit(s, 4)


def test_span_attention_share() -> None:
    spans = torch.tensor([[[0, 8], [8, 16]]])
    lengths = torch.tensor([2])
    weights = torch.zeros(1, 2, 4)  # 4 columns of 4 pixels over W = 16
    weights[0, 0, 0], weights[0, 0, 3] = 0.75, 0.25
    weights[0, 1, 2] = 1.0
    share = span_attention_share(weights, spans, lengths, width=16)
    assert share.tolist() == [[0.75, 1.0]]
    short = span_attention_share(weights, spans, torch.tensor([1]), width=16)
    assert torch.isnan(short[0, 1])
    with pytest.raises(ValueError, match="spans must cover"):
        span_attention_share(weights, spans[:, :1], lengths, width=16)


def test_strip_errors() -> None:
    digits, labels = pool()
    with pytest.raises(ValueError, match=r"digits must be uint8 MNIST images \(M, 28, 28\)"):
        digit_strips(digits.float(), labels, 2)
    with pytest.raises(ValueError, match="width must hold 6 digits"):
        digit_strips(digits, labels, 2, width=40)
    with pytest.raises(ValueError, match="bigram must be"):
        digit_strips(digits, labels, 2, bigram=torch.ones(10, 10))
    with pytest.raises(ValueError, match="digit_labels must have shape"):
        digit_strips(digits, labels[:5], 2)


def test_digit_pair_scenes() -> None:
    digits, labels = pool()
    p = digit_pair_scenes(digits, labels, 20, seed=0)
    assert p.images.shape == (20, 1, 56, 56) and p.labels.shape == (20, 2) and p.boxes.shape == (20, 2, 4)
    assert bool((p.boxes[:, 0, 0] + p.boxes[:, 0, 2] <= p.boxes[:, 1, 0]).all()), "first digit left of the second"
    again = digit_pair_scenes(digits, labels, 5, seed=0)
    assert torch.equal(again.images, p.images[:5])
    with pytest.raises(ValueError, match="size must be at least"):
        digit_pair_scenes(digits, labels, 2, size=30)
