"""attnlib.captioning.doubly_stochastic: the soft model's objective and its regulariser."""

from __future__ import annotations

import pytest
import torch

from attnlib.captioning import CaptionOutput, caption_nll, doubly_stochastic_penalty, soft_attention_loss


def test_penalty_equals_its_formula_on_a_hand_made_alpha():
    # B = 1, T = 2 steps over L = 3 cells: coverage sum_t alpha_ti = (1.0, 0.7, 0.3)
    alphas = torch.tensor([[[0.5, 0.5, 0.0], [0.5, 0.2, 0.3]]])
    expected = (1 - 1.0) ** 2 + (1 - 0.7) ** 2 + (1 - 0.3) ** 2  # 0.58
    assert doubly_stochastic_penalty(alphas).item() == pytest.approx(expected)


def test_penalty_is_zero_when_every_cell_is_covered_once_and_masked_steps_do_not_count():
    alphas = torch.eye(4)[None].repeat(2, 1, 1)  # (2, T=4, L=4): step t looks only at cell t
    assert doubly_stochastic_penalty(alphas).item() == 0.0
    mask = torch.tensor([[True, True, True, False], [True, True, True, True]])
    # the first caption loses step 4, so cell 4 is never covered: (1 - 0)^2 = 1; batch mean 0.5
    assert doubly_stochastic_penalty(alphas, mask).item() == pytest.approx(0.5)


@pytest.mark.parametrize("t,cells", [(2, 36), (7, 36), (36, 36)])
def test_for_a_fixed_total_the_uniform_coverage_is_the_minimum(t, cells):
    """With T steps the coverage sums to T; the penalty is smallest at T / L everywhere."""
    uniform = torch.full((1, t, cells), 1 / cells)
    peaked = torch.zeros(1, t, cells)
    peaked[0, torch.arange(t), torch.arange(t) % 4] = 1.0  # all attention on four cells
    assert doubly_stochastic_penalty(uniform).item() == pytest.approx(cells * (1 - t / cells) ** 2, rel=1e-5, abs=1e-9)
    assert doubly_stochastic_penalty(uniform) < doubly_stochastic_penalty(peaked)


@pytest.mark.parametrize("weight", [0.0, 1.0, 2.5])
def test_soft_attention_loss_adds_the_weighted_penalty_to_the_likelihood(weight):
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 16)
    alphas = torch.softmax(torch.randn(2, 3, 9), -1)
    captions = torch.tensor([[5, 2, 0], [4, 6, 2]])
    out = CaptionOutput(logits, alphas, torch.ones(2, 3), None, None)
    loss = soft_attention_loss(out, captions, doubly_stochastic_weight=weight)
    likelihood = caption_nll(logits, captions).mean()
    penalty = doubly_stochastic_penalty(alphas, captions != 0)
    assert torch.allclose(loss.likelihood, likelihood) and torch.allclose(loss.penalty, penalty)
    assert torch.allclose(loss.total, likelihood + weight * penalty)


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="exactly 3 dimensions"):
        doubly_stochastic_penalty(torch.rand(3, 4))
    with pytest.raises(ValueError, match=r"mask must have shape \(B, T\) = \(2, 3\); got \(2, 4\)"):
        doubly_stochastic_penalty(torch.rand(2, 3, 5), torch.ones(2, 4, dtype=torch.bool))
    out = CaptionOutput(torch.randn(2, 3, 16), torch.rand(2, 3, 9), torch.ones(2, 3), None, None)
    with pytest.raises(ValueError, match=r"captions must have shape \(B, T\) = \(2, 3\); got \(2, 4\)"):
        soft_attention_loss(out, torch.ones(2, 4, dtype=torch.long))
