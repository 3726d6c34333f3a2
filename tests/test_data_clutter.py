"""attnlib.data.clutter: translated and cluttered MNIST."""

from __future__ import annotations

import pytest
import torch

from attnlib.data import MNIST, DataNotFoundError, locate
from attnlib.data.clutter import cluttered_mnist, load_cluttered_mnist, load_translated_mnist, translated_mnist


def fake_digits(n: int = 12, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random uint8 'digits' with ink everywhere, so every pasted pixel is visible."""
    gen = torch.Generator().manual_seed(seed)
    digits = torch.randint(1, 256, (n, 28, 28), generator=gen, dtype=torch.uint8)
    return digits, torch.arange(n) % 10


@pytest.mark.parametrize("maker", [translated_mnist, cluttered_mnist])
@pytest.mark.parametrize("canvas", [28, 40, 60])
def test_shapes_range_and_labels(maker, canvas):
    digits, labels = fake_digits()
    out = maker(digits, labels, seed=1, canvas=canvas)
    assert out.images.shape == (12, 1, canvas, canvas) and out.images.dtype == torch.float32
    assert out.images.min() >= 0 and out.images.max() <= 1
    assert torch.equal(out.labels, labels) and out.positions.shape == (12, 2)
    assert out.positions.min() >= 0 and out.positions.max() <= canvas - 28


def test_the_translated_digit_sits_at_its_position_on_an_empty_canvas():
    digits, labels = fake_digits()
    out = translated_mnist(digits, labels, seed=3)
    for i in range(12):
        x, y = out.positions[i].tolist()
        assert torch.equal(out.images[i, 0, y : y + 28, x : x + 28], digits[i].float() / 255)
        outside = out.images[i, 0].clone()
        outside[y : y + 28, x : x + 28] = 0
        assert outside.abs().sum() == 0


def test_clutter_adds_pieces_of_other_digits_outside_the_digit():
    digits, labels = fake_digits()
    clean = translated_mnist(digits, labels, seed=5)
    cluttered = cluttered_mnist(digits, labels, seed=5, num_clutter=4, clutter_size=8)
    for i in range(12):
        x, y = cluttered.positions[i].tolist()
        window = cluttered.images[i, 0, y : y + 28, x : x + 28]
        assert (window >= digits[i].float() / 255).all()  # the digit is intact (brighter pixel wins)
        outside = cluttered.images[i, 0].clone()
        outside[y : y + 28, x : x + 28] = 0
        assert 0 < (outside > 0).sum() <= 4 * 64
    assert (cluttered.images > 0).sum() > (clean.images > 0).sum()


@pytest.mark.parametrize("maker", [translated_mnist, cluttered_mnist])
def test_each_example_is_a_pure_function_of_seed_and_index(maker):
    digits, labels = fake_digits()
    full = maker(digits, labels, seed=7)
    subset = maker(digits, labels, seed=7, indices=[9, 2, 5])
    assert torch.equal(subset.images, full.images[[9, 2, 5]]) and torch.equal(subset.labels, labels[[9, 2, 5]])
    assert torch.equal(maker(digits, labels, seed=7).images, full.images)
    assert not torch.equal(maker(digits, labels, seed=8).images, full.images)
    assert not torch.equal(maker(digits, labels, seed=7, split_code=1).images, full.images)


def test_positions_cover_the_canvas():
    digits, labels = fake_digits(200)
    pos = translated_mnist(digits, labels, seed=0).positions
    assert pos.min() <= 2 and pos.max() >= 30  # uniform over 0..32


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"canvas": 20}, r"canvas \(20\) must be at least the digit size \(28, 28\)"),
        ({"clutter_size": 30}, r"clutter_size \(30\) between 1 and it"),
        ({"indices": [12]}, r"index 12 is out of range for 12 source digits"),
    ],
)
def test_bad_arguments_are_rejected(kwargs, message):
    digits, labels = fake_digits()
    with pytest.raises(ValueError, match=message):
        cluttered_mnist(digits, labels, **kwargs)


def test_loaders_read_mnist_with_a_limit():
    try:
        locate(MNIST, download=False)
    except DataNotFoundError:
        pytest.skip("MNIST is not on disk; set ATTNLIB_DATA")
    train = load_translated_mnist("train", limit=50, seed=0)
    test = load_cluttered_mnist("test", limit=30, seed=0)
    assert train.images.shape == (50, 1, 60, 60) and test.images.shape == (30, 1, 60, 60)
    assert torch.equal(load_translated_mnist("train", limit=20, seed=0).images, train.images[:20])
    with pytest.raises(ValueError, match=r"split must be 'train' or 'test'; got 'dev'"):
        load_translated_mnist("dev")
