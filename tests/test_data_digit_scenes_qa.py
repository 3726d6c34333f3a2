"""attnlib.data.digit_scenes_qa: digit boards with questions, answers and asked-about regions."""

import pytest
import torch

from attnlib.data import NUM_ANSWERS, answer_text, digit_scenes_qa, question_text, region_attention_share


def pool(m: int = 40) -> tuple[torch.Tensor, torch.Tensor]:
    """Synthetic 'digits': digit of class c is a block of brightness 25 * (c + 1), so classes are visible."""
    labels = torch.arange(m) % 10
    digits = torch.zeros(m, 28, 28, dtype=torch.uint8)
    for i, c in enumerate(labels.tolist()):
        digits[i, 6:22, 6:22] = 25 * (c + 1)
    return digits, labels


def test_shapes_and_purity():
    digits, labels = pool()
    a = digit_scenes_qa(digits, labels, 12, seed=3)
    assert a.images.shape == (12, 1, 42, 42) and a.cells.shape == (12, 9) and a.regions.shape == (12, 9)
    assert a.questions.shape == (12, 2) and a.answers.shape == (12,)
    assert int(a.answers.max()) < NUM_ANSWERS
    b = digit_scenes_qa(digits, labels, 5, seed=3)
    assert torch.equal(a.images[:5], b.images) and torch.equal(a.answers[:5], b.answers)
    assert not torch.equal(digit_scenes_qa(digits, labels, 5, seed=4).images, b.images)


def test_answers_and_regions_follow_the_board():
    digits, labels = pool()
    data = digit_scenes_qa(digits, labels, 60, seed=0)
    for board, (kind, digit), answer, region in zip(data.cells, data.questions, data.answers, data.regions):
        anchor = int(torch.nonzero(board == digit)[0])
        occupied = (board >= 0).sum()
        assert 3 <= occupied <= 5 and len(set(board[board >= 0].tolist())) == occupied  # distinct classes
        if kind == 0:
            assert anchor % 3 > 0 and int(answer) == int(board[anchor - 1])
            assert torch.nonzero(region).flatten().tolist() == [anchor - 1]
        else:
            above = [p for p in range(9) if board[p] >= 0 and p // 3 < anchor // 3]
            assert int(answer) == 10 + len(above)
            assert torch.nonzero(region).flatten().tolist() == (above or [anchor])


def test_pixels_sit_in_the_occupied_cells():
    digits, labels = pool()
    data = digit_scenes_qa(digits, labels, 8, seed=1)
    ink = data.images[:, 0].reshape(8, 3, 14, 3, 14).sum(dim=(2, 4)).reshape(8, 9)  # (N, 9)
    assert torch.equal(ink > 0, data.cells >= 0)


def test_texts():
    assert question_text(torch.tensor([0, 7])) == "what digit is left of the 7?"
    assert question_text(torch.tensor([1, 2])) == "how many digits are above the 2?"
    assert answer_text(3) == "3" and answer_text(11) == "1 digit" and answer_text(12) == "2 digits"


def test_region_attention_share():
    weights = torch.tensor([[0.5, 0.25, 0.25], [0.1, 0.1, 0.8]])
    regions = torch.tensor([[True, False, False], [False, True, True]])
    assert torch.allclose(region_attention_share(weights, regions), torch.tensor([0.5, 0.9]))
    with pytest.raises(ValueError, match="bool tensor"):
        region_attention_share(weights, regions.float())


def test_bad_input():
    digits, labels = pool()
    with pytest.raises(ValueError, match="uint8 MNIST"):
        digit_scenes_qa(digits.float(), labels, 2)
    with pytest.raises(ValueError, match="num_digits"):
        digit_scenes_qa(digits, labels, 2, num_digits=(2, 4))
    with pytest.raises(ValueError, match="every class"):
        digit_scenes_qa(digits[labels < 9], labels[labels < 9], 2)


def test_baselines_by_hand():
    from attnlib.data import position_rule_accuracy, question_type_prior

    # board (3x3, row by row): 7 at 0, 2 at 1, 5 at 4, 9 at 8
    cells = torch.tensor([[7, 2, -1, -1, 5, -1, -1, -1, 9]] * 2)
    questions = torch.tensor([[0, 2], [1, 9]])  # left of the 2 (answer 7); how many above the 9 (answer 3)
    answers = torch.tensor([7, 13])
    rule = position_rule_accuracy(cells, questions, answers)
    # left of: cells outside the last column with an occupied right cell, not the 2: only the 7
    # count: anchors 7 and 2 give 0, 5 gives 2, 9 gives 3 -> the rule guesses 0
    assert torch.allclose(rule, torch.tensor([1.0, 0.0]))
    wider = position_rule_accuracy(cells, questions, answers, right_neighbour=False)
    assert torch.allclose(wider, torch.tensor([1 / 2, 0.0]))  # the 7 or the 5
    train_q = torch.tensor([[0, 1], [0, 3], [0, 4], [1, 2], [1, 5]])
    train_a = torch.tensor([4, 4, 6, 12, 12])
    assert torch.equal(question_type_prior(train_q, train_a, questions), torch.tensor([4, 12]))
    with pytest.raises(ValueError, match="does not occur"):
        question_type_prior(train_q[:3], train_a[:3], questions)
