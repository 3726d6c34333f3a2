"""attnlib.data.digit_captions: captioned digit scenes and the attention localisation score."""

from __future__ import annotations

import pytest
import torch

from attnlib.data import (
    CAPTION_VOCAB,
    DIGIT_WORDS,
    decode_caption,
    digit_caption_scenes,
    encode_caption,
    localisation_score,
)


def fake_digits(n: int = 20, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random uint8 'digits' with ink everywhere, so every placed digit fills its box."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(64, 256, (n, 28, 28), generator=gen, dtype=torch.uint8), torch.arange(n) % 10


@pytest.mark.parametrize("canvas,digit_size", [(48, 14), (48, 16), (60, 18)])
def test_shapes_ranges_and_boxes_hold_the_ink(canvas, digit_size):
    digits, labels = fake_digits()
    data = digit_caption_scenes(digits, labels, 30, seed=1, canvas=canvas, digit_size=digit_size)
    assert data.images.shape == (30, 1, canvas, canvas) and data.images.dtype == torch.float32
    assert data.images.min() >= 0 and data.images.max() <= 1
    assert data.captions.shape == (30, 11) and data.boxes.shape == (30, 4, 4) and data.labels.shape == (30, 4)
    for i in range(30):
        k = int((data.labels[i] >= 0).sum())
        assert 2 <= k <= 4
        inside = torch.zeros(canvas, canvas, dtype=torch.bool)
        for x, y, w, h in data.boxes[i, :k].tolist():
            assert (w, h) == (digit_size, digit_size) and 0 <= x <= canvas - w and 0 <= y <= canvas - h
            assert data.images[i, 0, y : y + h, x : x + w].min() > 0  # the digit is there
            inside[y : y + h, x : x + w] = True
        assert data.images[i, 0][~inside].abs().sum() == 0  # and nothing else is
        assert (data.boxes[i, k:] == -1).all() and (data.labels[i, k:] == -1).all()


def test_captions_name_the_digits_in_reading_order_with_true_relations():
    digits, labels = fake_digits()
    data = digit_caption_scenes(digits, labels, 200, seed=2)
    for i in range(200):
        words = decode_caption(data.captions[i])
        k = int((data.labels[i] >= 0).sum())
        named = [w for w in words if w in DIGIT_WORDS]
        assert named == [DIGIT_WORDS[int(c)] for c in data.labels[i, :k]]
        rows = [int(y) // 16 for y in data.boxes[i, :k, 1]]
        cols = [int(x) // 16 for x in data.boxes[i, :k, 0]]
        assert [r * 3 + c for r, c in zip(rows, cols)] == sorted(r * 3 + c for r, c in zip(rows, cols))
        relations = " ".join(words)
        for j in range(1, k):
            expected = "left of" if rows[j] == rows[j - 1] else "above"
            assert f"{named[j - 1]} {expected} {named[j]}" in relations
        assert data.lengths[i] == len(words) + 1 and data.captions[i, len(words)] == 2  # <eos>
        owners = data.word_digit[i, : len(words)].tolist()
        assert [o for o in owners if o >= 0] == list(range(k))
        assert all((o >= 0) == (w in DIGIT_WORDS) for o, w in zip(owners, words))


def test_every_scene_is_a_pure_function_of_seed_split_and_index():
    digits, labels = fake_digits()
    whole = digit_caption_scenes(digits, labels, 12, seed=5)
    part = digit_caption_scenes(digits, labels, 4, seed=5, start=8)
    for a, b in zip(whole, part):
        assert torch.equal(a[8:], b)
    other_seed = digit_caption_scenes(digits, labels, 12, seed=6)
    other_split = digit_caption_scenes(digits, labels, 12, seed=5, split_code=1)
    assert not torch.equal(whole.images, other_seed.images) and not torch.equal(whole.images, other_split.images)


def test_encode_and_decode_round_trip_and_reject_unknown_words():
    words = ["seven", "left", "of", "two", "above", "four"]
    tokens = encode_caption(words)
    assert tokens[-1] == CAPTION_VOCAB.index("<eos>") and decode_caption(tokens + [0, 0]) == words
    with pytest.raises(ValueError, match=r"\['right'\] are not in the caption vocabulary"):
        encode_caption(["seven", "right", "of", "two"])
    with pytest.raises(ValueError, match="outside the vocabulary of 16"):
        decode_caption([3, 99])


@pytest.mark.parametrize(
    "bad,message",
    [
        (dict(canvas=50), "divisible by 3"),
        (dict(digit_size=17), "between 1 and canvas // 3 = 16"),
        (dict(min_digits=3, max_digits=2), "min_digits <= max_digits"),
    ],
)
def test_bad_sizes_raise(bad, message):
    digits, labels = fake_digits()
    with pytest.raises(ValueError, match=message):
        digit_caption_scenes(digits, labels, 2, **bad)


def one_scene() -> tuple[torch.Tensor, torch.Tensor]:
    """Two 16x16 digits exactly on cells of a 3x3 grid over a 48-pixel canvas: boxes and owners."""
    boxes = torch.tensor([[[0, 0, 16, 16], [32, 32, 16, 16], [-1, -1, -1, -1], [-1, -1, -1, -1]]])
    word_digit = torch.tensor([[0, -1, -1, 1, -1]])  # "d0 left of d1 <eos>"-like: tokens 0 and 3 name digits
    return boxes, word_digit


def test_localisation_score_on_hand_made_maps():
    boxes, word_digit = one_scene()
    maps = torch.full((1, 5, 3, 3), 1 / 9)
    maps[0, 0] = 0
    maps[0, 0, 0, 0] = 1.0  # all of word 0 on digit 0's cell
    maps[0, 3] = 0
    maps[0, 3, 2, 2], maps[0, 3, 0, 0] = 0.25, 0.75  # a quarter on digit 1, the arg-max elsewhere
    score = localisation_score(maps, boxes, word_digit, canvas=48)
    assert score["words"] == 2
    assert score["share"] == pytest.approx((1.0 + 0.25) / 2)
    assert score["hit_rate"] == pytest.approx(0.5)
    assert score["uniform_share"] == pytest.approx(256 / 48**2)
    assert score["uniform_hit_rate"] == pytest.approx(1 / 9)


def test_a_uniform_map_scores_the_uniform_share_and_cut_cells_count_in_proportion():
    boxes = torch.tensor([[[4, 0, 8, 16], [-1] * 4, [-1] * 4, [-1] * 4]])  # half of cell (0, 0), shifted
    word_digit = torch.tensor([[0]])
    uniform = torch.full((1, 1, 9), 1 / 9)
    score = localisation_score(uniform, boxes, word_digit, canvas=48)
    assert score["share"] == pytest.approx(score["uniform_share"])
    assert score["uniform_share"] == pytest.approx(128 / 2304)
    on_cell = torch.zeros(1, 1, 9)
    on_cell[0, 0, 0] = 1.0
    assert localisation_score(on_cell, boxes, word_digit, canvas=48)["share"] == pytest.approx(0.5)


def test_localisation_score_errors():
    boxes, word_digit = one_scene()
    with pytest.raises(ValueError, match=r"grid \(2, 4\) has 8 cells but maps have L = 9"):
        localisation_score(torch.rand(1, 5, 9), boxes, word_digit, canvas=48, grid=(2, 4))
    with pytest.raises(ValueError, match="must share N"):
        localisation_score(torch.rand(2, 5, 9), boxes, word_digit, canvas=48)
    with pytest.raises(ValueError, match="no token names a digit"):
        localisation_score(torch.rand(1, 5, 9), boxes, torch.full((1, 5), -1), canvas=48)
