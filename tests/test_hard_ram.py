"""attnlib.hard.ram: the Recurrent Attention Model."""

from __future__ import annotations

import pytest
import torch

import attnlib
from attnlib.hard.ram import RAMConfig, RecurrentAttentionModel
from attnlib.hard.reinforce import hybrid_loss

SMALL = dict(what_size=16, where_size=8, glimpse_size=24, hidden_size=20)


# Tiny tensors: one thread is as fast, and immune to other jobs on the cores.
pytestmark = pytest.mark.usefixtures("one_thread")


def small(**overrides) -> RecurrentAttentionModel:
    return RecurrentAttentionModel(RAMConfig(**{**SMALL, **overrides}))


def grads(module: torch.nn.Module) -> list[float]:
    """The gradient norm of each parameter (0 where no gradient arrived)."""
    return [0.0 if p.grad is None else p.grad.norm().item() for p in module.parameters()]


@pytest.mark.parametrize("core", ["rnn", "lstm"])
@pytest.mark.parametrize("scales, size, glimpses", [(1, 28, 6), (3, 60, 4), (2, 20, 1)])
def test_output_shapes_and_ranges(core, scales, size, glimpses):
    torch.manual_seed(0)
    model = small(core=core, num_scales=scales, num_glimpses=glimpses, patch_size=6, location_std=0.5)
    out = model.train()(torch.rand(5, 1, size, size))
    assert out.log_probs.shape == (5, 10)
    assert torch.allclose(out.log_probs.exp().sum(-1), torch.ones(5), atol=1e-5)
    assert out.locations.shape == (5, glimpses, 2)
    assert out.location_log_probs.shape == out.baselines.shape == (5, glimpses)
    assert out.locations.abs().max() <= 1


def test_fewer_glimpses_on_request():
    out = small(num_glimpses=6)(torch.rand(2, 1, 28, 28), num_glimpses=2)
    assert out.locations.shape == (2, 2, 2)


def test_recorded_patches_and_locations_have_the_documented_shapes():
    model = small(num_scales=2, patch_size=8, num_glimpses=3)
    with attnlib.record_attention(model) as maps:
        out = model(torch.rand(4, 1, 28, 28))
    assert maps.names() == ["location", "glimpse.sensor"]
    assert maps.stacked("glimpse.sensor", dim=1).shape == (4, 3, 2, 1, 8, 8)
    assert torch.equal(maps.stacked("location", dim=1), out.locations)


def test_the_first_recorded_patch_is_the_glimpse_at_the_first_location():
    model = small(num_glimpses=2).eval()
    images = torch.rand(3, 1, 28, 28)
    with attnlib.record_attention(model) as maps:
        out = model(images)
    assert torch.allclose(maps["glimpse.sensor"][0], model.glimpse.sensor(images, out.locations[:, 0]))


def loss_terms(model: RecurrentAttentionModel, seed: int = 0):
    torch.manual_seed(seed)
    out = model.train()(torch.rand(8, 1, 28, 28))
    return hybrid_loss(out.log_probs, torch.randint(0, 10, (8,)), out.location_log_probs, out.baselines)


def test_the_baseline_gradient_reaches_only_the_baseline():
    model = small()
    loss_terms(model).baseline.backward()
    assert any(grads(model.baseline))
    for part in (model.location, model.core, model.glimpse, model.action):
        assert not any(grads(part)), type(part).__name__


def test_the_classification_gradient_does_not_reach_the_location_policy():
    model = small()
    loss_terms(model).classification.backward()
    assert not any(grads(model.location)) and not any(grads(model.baseline))
    assert any(grads(model.core)) and any(grads(model.glimpse)) and any(grads(model.action))


@pytest.mark.parametrize("into_core", [False, True])
def test_the_reinforce_gradient_reaches_the_policy_and_the_core_only_when_asked(into_core):
    model = small(reinforce_trains_core=into_core)
    terms = loss_terms(model)
    terms.reinforce.backward()
    assert any(grads(model.location))
    assert not any(grads(model.baseline)) and not any(grads(model.action))
    assert any(grads(model.core)) == into_core


def test_determinism_under_a_seed():
    def run():
        attnlib.seed_everything(3)
        model = small()
        return model.train()(torch.rand(4, 1, 28, 28))

    a, b = run(), run()
    for x, y in zip(a, b):
        assert torch.equal(x, y)


def test_eval_follows_the_mean_and_monte_carlo_averages_samples():
    torch.manual_seed(0)
    model = small(location_std=0.3).eval()
    images = torch.rand(3, 1, 28, 28)
    first, second = model(images), model(images)
    assert torch.equal(first.locations, second.locations)
    assert torch.equal(model.predict(images), first.log_probs)
    torch.manual_seed(1)
    mc = model.predict(images, num_samples=4)
    torch.manual_seed(1)
    by_hand = torch.stack([model(images, sample=True).log_probs.exp() for _ in range(4)]).mean(0).log()
    assert torch.allclose(mc, by_hand) and not torch.allclose(mc, first.log_probs)


def test_a_tiny_model_learns_where_to_look():
    """Class 1 has a bright square in the top-left corner, class 0 has nothing: a 4x4
    glimpse at the centre cannot tell them apart, so the policy must learn to look there."""
    attnlib.seed_everything(0)
    labels = torch.randint(0, 2, (64,))
    images = torch.zeros(64, 1, 16, 16)
    images[labels == 1, :, 1:5, 1:5] = 1.0  # the square's centre is at (-0.625, -0.625)
    model = small(num_classes=2, patch_size=4, num_glimpses=1, location_std=0.4)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(200):
        out = model.train()(images)
        optimizer.zero_grad()
        hybrid_loss(out.log_probs, labels, out.location_log_probs, out.baselines).total.backward()
        optimizer.step()
    out = model.eval()(images)
    assert (out.log_probs.argmax(-1) == labels).float().mean().item() > 0.95
    assert (out.locations[:, 0] < -0.4).all()  # both x and y moved to the corner


@pytest.mark.parametrize(
    "images, kwargs, message",
    [
        (torch.rand(2, 3, 28, 28), {}, r"images must have 1 channel\(s\) \(B, C, H, W\); got shape \(2, 3, 28, 28\)"),
        (torch.rand(2, 28, 28), {}, r"images must have exactly 4 dimensions"),
        (torch.rand(2, 1, 28, 28), {"num_glimpses": 0}, r"num_glimpses must be >= 1; got 0"),
    ],
)
def test_bad_input_is_rejected(images, kwargs, message):
    with pytest.raises(ValueError, match=message):
        small()(images, **kwargs)


def test_given_locations_are_used_and_scored_under_the_policy():
    model = small(num_glimpses=3, location_std=0.2).eval()
    images = torch.rand(2, 1, 28, 28)
    forced = torch.tensor([[[0.5, -0.5], [0.1, 0.2], [-0.9, 0.9]]]).expand(2, 3, 2)
    with attnlib.record_attention(model) as maps:
        out = model(images, locations=forced)
    assert torch.equal(out.locations, forced)
    assert torch.allclose(maps["glimpse.sensor"][2], model.glimpse.sensor(images, forced[:, 2]))
    mean = model(images).locations  # the policy's own path
    assert (out.location_log_probs < model(images, locations=mean).location_log_probs).all()
    with pytest.raises(
        ValueError, match=r"locations must have shape \(B, T, 2\) with B = 2 and T >= 3; got \(2, 2, 2\)"
    ):
        model(images, num_glimpses=3, locations=forced[:, :2])
