"""attnlib.hard.location_policy: the Gaussian location policy of the RAM."""

from __future__ import annotations

import math

import pytest
import torch

import attnlib
from attnlib.hard.location_policy import LocationNetwork


@pytest.mark.parametrize("std", [0.05, 0.5, 3.0])
def test_locations_stay_in_the_image_and_are_detached(std):
    torch.manual_seed(0)
    net = LocationNetwork(8, std=std)
    with torch.no_grad():
        net.mean.bias.fill_(5.0)  # a mean pushed to the edge
    loc, log_prob = net(torch.randn(200, 8))
    assert loc.shape == (200, 2) and log_prob.shape == (200,)
    assert loc.min() >= -1 and loc.max() <= 1
    assert not loc.requires_grad and log_prob.requires_grad


def test_location_log_prob_is_the_gaussian_log_density_of_the_unclamped_sample():
    torch.manual_seed(1)
    net = LocationNetwork(4, std=0.3).double()
    h = torch.randn(6, 4, dtype=torch.float64)
    mu = torch.tanh(net.mean(h))
    torch.manual_seed(2)
    loc, log_prob = net(h)
    torch.manual_seed(2)
    raw = mu + 0.3 * torch.randn(6, 2, dtype=torch.float64)
    density = (-((raw - mu) ** 2) / (2 * 0.09) - math.log(0.3 * math.sqrt(2 * math.pi))).sum(-1)
    assert torch.allclose(log_prob, density) and torch.allclose(loc, raw.clamp(-1, 1))
    mean_loc, _ = net(h, sample=False)
    assert torch.allclose(mean_loc, mu)


def test_location_network_emits_its_locations():
    net = LocationNetwork(4)
    with attnlib.record_attention(net) as maps:
        loc, _ = net(torch.randn(3, 4))
    assert torch.equal(maps[""][0], loc)


def test_location_network_rejects_a_non_positive_std():
    with pytest.raises(ValueError, match="std must be > 0; got 0.0"):
        LocationNetwork(4, std=0.0)
