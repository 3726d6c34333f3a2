"""attnlib.hard.reinforce: the score-function estimator and the RAM's hybrid loss."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from attnlib.hard.location_policy import LocationNetwork
from attnlib.hard.reinforce import (
    expected_reward_gradient,
    hybrid_loss,
    reinforce_loss,
    score_function_samples,
)


def test_reinforce_loss_on_a_hand_made_batch():
    log_probs = torch.tensor([[-1.0, -2.0], [-0.5, -0.1]])  # (B=2, T=2)
    rewards = torch.tensor([1.0, 0.0])
    baselines = torch.tensor([[0.25, 0.5], [0.5, 0.0]])
    # row 0: -(0.75 * -1 + 0.5 * -2) = 1.75; row 1: -(-0.5 * -0.5 + 0 * -0.1) = -0.25
    assert torch.isclose(reinforce_loss(log_probs, rewards, baselines), torch.tensor(0.75))
    assert torch.isclose(reinforce_loss(log_probs, rewards), torch.tensor(1.5))  # no baseline: (3 + 0) / 2


def test_reinforce_loss_sends_no_gradient_to_rewards_or_baselines():
    log_probs = torch.randn(4, 3, requires_grad=True)
    rewards = torch.rand(4, requires_grad=True)
    baselines = torch.rand(4, 3, requires_grad=True)
    reinforce_loss(log_probs, rewards, baselines).backward()
    assert rewards.grad is None and baselines.grad is None and log_probs.grad is not None


@pytest.mark.parametrize("rewarded", [0, 2, 4])
def test_one_step_raises_the_log_probability_of_a_rewarded_action(rewarded):
    """The sign: minimising the surrogate makes a rewarded action more likely."""
    logits = torch.zeros(5, requires_grad=True)
    log_p = torch.log_softmax(logits, 0)
    before = log_p[rewarded].item()
    loss = reinforce_loss(log_p[rewarded].view(1, 1), torch.ones(1))
    loss.backward()
    with torch.no_grad():
        logits -= 0.1 * logits.grad
    assert torch.log_softmax(logits, 0)[rewarded].item() > before


def test_one_step_moves_the_gaussian_policy_towards_a_rewarded_location():
    torch.manual_seed(0)
    policy = LocationNetwork(3, std=0.2)
    h = torch.randn(1, 3)
    location, log_prob = policy(h)
    mean_before = torch.tanh(policy.mean(h)).detach()
    reinforce_loss(log_prob, torch.ones(1)).backward()
    with torch.no_grad():
        for p in policy.parameters():
            p -= 1e-3 * p.grad
    mean_after = torch.tanh(policy.mean(h)).detach()
    assert (mean_after - location).norm() < (mean_before - location).norm()
    new_log_prob = torch.distributions.Normal(mean_after, 0.2).log_prob(location).sum()
    assert new_log_prob > log_prob.item()


def test_an_unrewarded_action_becomes_less_likely_with_a_positive_baseline():
    logits = torch.zeros(3, requires_grad=True)
    log_p = torch.log_softmax(logits, 0)
    reinforce_loss(log_p[1].view(1, 1), torch.zeros(1), torch.full((1, 1), 0.5)).backward()
    with torch.no_grad():
        logits -= 0.1 * logits.grad
    assert torch.log_softmax(logits, 0)[1].item() < log_p[1].item()


def test_hybrid_loss_terms():
    log_probs = torch.log(torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]]))  # predicts 0 and 2
    targets = torch.tensor([0, 1])
    loc_log_probs = torch.tensor([[-1.0, -1.0], [-2.0, -2.0]], requires_grad=True)
    baselines = torch.tensor([[0.5, 0.5], [0.5, 0.5]], requires_grad=True)
    out = hybrid_loss(log_probs, targets, loc_log_probs, baselines)
    assert torch.equal(out.reward, torch.tensor([1.0, 0.0]))
    assert torch.isclose(out.classification, F.nll_loss(log_probs, targets))
    assert torch.isclose(out.reinforce, torch.tensor((-(0.5 * -2) - (-0.5 * -4)) / 2))
    assert torch.isclose(out.baseline, torch.tensor(0.25))
    assert torch.isclose(out.total, out.classification + out.reinforce + out.baseline)
    out.total.backward()
    # the baseline learns only from its regression: d/db mean (b - R)^2 = 2 (b - R) / 4
    assert torch.allclose(baselines.grad, torch.tensor([[-0.25, -0.25], [0.25, 0.25]]))


@pytest.mark.parametrize(
    "args, message",
    [
        (
            (torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), torch.zeros(2, 4), torch.zeros(2, 3)),
            r"baselines must have the shape of location_log_probs \(2, 4\); got \(2, 3\)",
        ),
        (
            (torch.zeros(2, 3), torch.zeros(3, dtype=torch.long), torch.zeros(2, 4), torch.zeros(2, 4)),
            r"must share the batch size B",
        ),
        (
            (torch.zeros(3), torch.zeros(3, dtype=torch.long), torch.zeros(3, 4), torch.zeros(3, 4)),
            r"log_probs must have exactly 2 dimensions \(B, K\); got shape \(3,\)",
        ),
    ],
)
def test_hybrid_loss_rejects_mismatched_shapes(args, message):
    with pytest.raises(ValueError, match=message):
        hybrid_loss(*args)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_expected_reward_gradient_matches_autograd(seed):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(6, generator=gen, dtype=torch.float64, requires_grad=True)
    rewards = torch.randn(6, generator=gen, dtype=torch.float64)
    (torch.softmax(logits, 0) * rewards).sum().backward()
    assert torch.allclose(expected_reward_gradient(logits.detach(), rewards), logits.grad)


def test_score_function_samples_are_unbiased_and_a_baseline_cuts_their_variance():
    logits = torch.tensor([1.0, 0.0, -0.5, 0.3], dtype=torch.float64)
    rewards = torch.tensor([3.0, 2.0, 2.5, 2.2], dtype=torch.float64)  # all far from 0
    exact = expected_reward_gradient(logits, rewards)
    plain = score_function_samples(logits, rewards, 40000, generator=torch.Generator().manual_seed(0))
    mean_reward = float((torch.softmax(logits, 0) * rewards).sum())
    based = score_function_samples(
        logits, rewards, 40000, baseline=mean_reward, generator=torch.Generator().manual_seed(0)
    )
    assert plain.shape == (40000, 4)
    for est in (plain, based):
        stderr = est.std(0) / 40000**0.5
        assert ((est.mean(0) - exact).abs() < 5 * stderr + 1e-9).all()
    assert based.var(0).sum() < 0.2 * plain.var(0).sum()


def test_score_function_single_sample_matches_autograd():
    logits = torch.tensor([0.2, -0.1, 0.4], requires_grad=True)
    rewards = torch.tensor([1.0, 5.0, 2.0])
    gen = torch.Generator().manual_seed(3)
    est = score_function_samples(logits.detach(), rewards, 1, baseline=0.5, generator=gen)[0]
    action = torch.multinomial(torch.softmax(logits.detach(), 0), 1, generator=torch.Generator().manual_seed(3)).item()
    ((rewards[action] - 0.5) * torch.log_softmax(logits, 0)[action]).backward()
    assert torch.allclose(est, logits.grad)


def test_categorical_helpers_reject_mismatched_rewards():
    with pytest.raises(ValueError, match=r"rewards must have the shape of logits \(3,\); got \(4,\)"):
        expected_reward_gradient(torch.zeros(3), torch.zeros(4))
    with pytest.raises(ValueError, match=r"rewards must have the shape of logits \(3,\); got \(2,\)"):
        score_function_samples(torch.zeros(3), torch.zeros(2), 5)
