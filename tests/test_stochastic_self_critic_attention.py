"""attnlib.stochastic.self_critic_attention: the gain, the two losses and who each one trains."""

from __future__ import annotations

import pytest
import torch

from attnlib import record_attention
from attnlib.stochastic import SelfCriticAttention, attention_gain, self_critic_losses


def test_gain_by_hand():
    attended = torch.log(torch.tensor([[0.7, 0.3], [0.2, 0.8]]))
    plain = torch.log(torch.tensor([[0.5, 0.5], [0.4, 0.6]]))
    gain = attention_gain(attended, plain, torch.tensor([0, 0]))
    assert torch.allclose(gain, torch.tensor([0.2, -0.2]), atol=1e-6)


def test_each_loss_trains_only_its_own_part():
    torch.manual_seed(0)
    model = SelfCriticAttention(3, hidden_channels=4)
    x = torch.randn(2, 3, 5, 5)
    model(x)
    losses = self_critic_losses(model.critic, x, model.last_map, torch.tensor([0.5, -0.1]))
    critic_params, agent_params = list(model.critic.parameters()), list(model.agent.parameters())
    g_critic = torch.autograd.grad(losses.critic, critic_params + agent_params, allow_unused=True)
    assert all(g is not None for g in g_critic[: len(critic_params)])
    assert all(g is None for g in g_critic[len(critic_params) :])
    g_agent = torch.autograd.grad(losses.agent, critic_params + agent_params, allow_unused=True)
    assert all(g is None for g in g_agent[: len(critic_params)])
    assert all(g is not None and g.abs().sum() > 0 for g in g_agent[len(critic_params) :])


def test_agent_step_raises_the_critics_score():
    torch.manual_seed(0)
    model = SelfCriticAttention(3, hidden_channels=4)
    x = torch.randn(4, 3, 5, 5)
    opt = torch.optim.SGD(model.agent.parameters(), lr=0.5)
    model(x)
    before = self_critic_losses(model.critic, x, model.last_map, torch.zeros(4))
    opt.zero_grad()
    before.agent.backward()
    opt.step()
    model(x)
    after = self_critic_losses(model.critic, x, model.last_map, torch.zeros(4))
    assert after.value.mean() > before.value.mean()


def test_critic_learns_a_reward_that_depends_on_the_map():
    """Reward = attention mass on the left half: the critic fits it from (x, A)."""
    torch.manual_seed(0)
    model = SelfCriticAttention(2, hidden_channels=8)
    opt = torch.optim.Adam(model.critic.parameters(), lr=0.01)
    first = last = 0.0
    for step in range(150):
        x = torch.randn(16, 2, 6, 6)
        a = torch.rand(16, 1, 6, 6)
        reward = a[..., :3].mean((1, 2, 3)) - a[..., 3:].mean((1, 2, 3))
        loss = self_critic_losses(model.critic, x, a, reward).critic
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = loss.item() if step == 0 else first
        last = loss.item()
    assert last < 0.3 * first, (first, last)


def test_module_output_and_recording():
    model = SelfCriticAttention(3)
    x = torch.randn(2, 3, 4, 4)
    with record_attention(model) as maps:
        y = model(x)
    a = maps.last(model)
    assert a.shape == (2, 1, 4, 4) and ((a > 0) & (a < 1)).all()
    assert torch.allclose(y, x * a)


def test_bad_input_errors():
    model = SelfCriticAttention(3)
    with pytest.raises(ValueError, match="3 channels"):
        model(torch.randn(1, 2, 4, 4))
    x = torch.randn(2, 3, 4, 4)
    with pytest.raises(ValueError, match=r"attention must have shape \(2, 1, 4, 4\)"):
        self_critic_losses(model.critic, x, torch.rand(2, 1, 3, 4), torch.zeros(2))
    with pytest.raises(ValueError, match=r"reward must have shape \(2,\)"):
        self_critic_losses(model.critic, x, torch.rand(2, 1, 4, 4), torch.zeros(3))
    with pytest.raises(ValueError, match="plain_logits must have the shape"):
        attention_gain(torch.zeros(2, 3), torch.zeros(2, 4), torch.zeros(2).long())
