"""attnlib.scoring: the score modules."""

from __future__ import annotations

import pytest
import torch

import attnlib.functional as AF
from attnlib import AdditiveScore, BilinearScore, ConcatScore, DotScore, ScaledDotScore


def make_scores(eq: int, ek: int, hidden: int = 6):
    return {
        "dot": DotScore(),
        "scaled_dot": ScaledDotScore(),
        "additive": AdditiveScore(eq, ek, hidden),
        "bilinear": BilinearScore(eq, ek),
        "concat": ConcatScore(eq, ek, hidden),
    }


@pytest.mark.parametrize("name", ["dot", "scaled_dot", "additive", "bilinear", "concat"])
def test_score_modules_shapes_and_functional_equivalence(name):
    torch.manual_seed(0)
    same = name in ("dot", "scaled_dot")
    eq, ek = (8, 8) if same else (8, 5)
    score = make_scores(eq, ek)[name]
    q, k = torch.randn(2, 3, 4, eq), torch.randn(2, 3, 7, ek)
    scores = score(q, k)
    assert scores.shape == (2, 3, 4, 7)
    expected = {
        "dot": lambda: AF.dot_score(q, k),
        "scaled_dot": lambda: AF.scaled_dot_score(q, k),
        "additive": lambda: AF.additive_score(q, k, score.w_q.weight, score.w_k.weight, score.v.weight[0]),
        "bilinear": lambda: AF.bilinear_score(q, k, score.w.weight),
        "concat": lambda: AF.concat_score(q, k, score.w.weight, score.v.weight[0]),
    }[name]()
    assert torch.equal(scores, expected)
    # gradients reach every parameter
    params = list(score.parameters())
    if not params:
        return
    scores.sum().backward()
    for p in params:
        assert p.grad is not None and p.grad.abs().sum() > 0


def test_parameter_counts_match_the_formulas():
    eq, ek, h = 8, 5, 6
    counts = {n: sum(p.numel() for p in m.parameters()) for n, m in make_scores(eq, ek, h).items()}
    assert counts == {
        "dot": 0,
        "scaled_dot": 0,
        "additive": h * (eq + ek + 1),
        "bilinear": eq * ek,
        "concat": h * (eq + ek + 1),
    }


def test_score_modules_reject_mismatched_inputs():
    with pytest.raises(ValueError, match=r"w_q must have shape \(6, 3\); got \(6, 8\)"):
        AdditiveScore(8, 5, 6)(torch.randn(2, 3), torch.randn(4, 5))
    with pytest.raises(ValueError, match=r"feature size E"):
        DotScore()(torch.randn(2, 3), torch.randn(4, 5))
