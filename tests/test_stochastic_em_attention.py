"""attnlib.stochastic.em_attention: EM iterations, their objective, the moving average, the block."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from attnlib import record_attention
from attnlib.stochastic import EMAttention, em_iterations, em_objective


def _data(b: int = 2, c: int = 6, n: int = 50, k: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, c, n, generator=g, dtype=torch.float64)
    mu = F.normalize(torch.randn(1, c, k, generator=g, dtype=torch.float64), dim=1)
    return x, mu


def test_one_iteration_matches_the_equations_by_hand():
    x, mu = _data()
    result = em_iterations(x, mu, iterations=1)
    z = torch.softmax(torch.einsum("bcn,bck->bnk", x, mu.expand(2, -1, -1)), dim=2)
    expected = torch.einsum("bcn,bnk->bck", x, z / z.sum(dim=1, keepdim=True))
    expected = expected / expected.norm(dim=1, keepdim=True)
    assert torch.allclose(result.bases, expected, atol=1e-5), (result.bases - expected).abs().max()
    assert torch.allclose(result.responsibilities, z)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("scale", [0.5, 3.0])
def test_the_objective_never_decreases(seed, scale):
    x, mu = _data(seed=seed)
    result = em_iterations(x * scale, mu, iterations=8)
    steps = result.objectives.diff(dim=1)  # (B, T)
    assert (steps >= -1e-9).all(), steps.min()
    assert (steps[:, 0] > 0).all()  # the first iteration from random bases improves


def test_responsibilities_on_the_simplex_and_bases_unit():
    x, mu = _data()
    result = em_iterations(x, mu, iterations=3)
    assert result.responsibilities.shape == (2, 50, 4)
    assert torch.allclose(result.responsibilities.sum(-1), torch.ones(2, 50, dtype=torch.float64))
    assert (result.responsibilities >= 0).all()
    assert torch.allclose(result.bases.norm(dim=1), torch.ones(2, 4, dtype=torch.float64))


def test_objective_formula():
    x, mu = _data(b=1, n=3, k=2)
    scores = x[0].T @ mu[0]  # (N, K)
    expected = torch.log(torch.exp(scores).sum(dim=1)).sum()
    assert torch.isclose(em_objective(x, mu)[0], expected)


@pytest.mark.parametrize("shape", [(2, 8, 5, 7), (1, 4, 3, 3)])
def test_block_shapes_maps_and_gradient(shape):
    torch.manual_seed(0)
    b, c, h, w = shape
    block = EMAttention(c, num_bases=3, iterations=2)
    x = torch.randn(*shape, requires_grad=True)
    with record_attention(block) as maps:
        y = block(x)
    assert y.shape == shape
    z = maps.last(block)
    assert z.shape == (b, 3, h, w)
    assert torch.allclose(z.sum(dim=1), torch.ones(b, h, w), atol=1e-5)
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert block.conv_in.weight.grad is None  # the authors' code: no gradient through the EM part


def test_gradient_through_the_last_e_step_reaches_the_input_convolution():
    torch.manual_seed(0)
    block = EMAttention(4, num_bases=3, iterations=2, grad_through_last_e_step=True)
    block(torch.randn(2, 4, 5, 5)).square().sum().backward()
    grad = block.conv_in.weight.grad
    assert grad is not None and grad.abs().sum() > 0


def test_moving_average_only_in_training_and_converges_on_a_fixed_batch():
    torch.manual_seed(0)
    block = EMAttention(4, num_bases=3, iterations=3)
    x = torch.randn(3, 4, 6, 6)
    block.eval()
    before = block.mu.clone()
    block(x)
    assert torch.equal(block.mu, before)  # evaluation does not move the bases
    block.train()
    changes = []
    for _ in range(200):
        old = block.mu.clone()
        with torch.no_grad():
            block(x)
        changes.append((block.mu - old).norm().item())
    assert changes[0] > 1e-3
    assert changes[-1] < 1e-4 * max(changes[0], 1e-12) or changes[-1] < 1e-6, changes[-5:]
    assert (block.mu.norm(dim=1) <= 1 + 1e-5).all()  # an average of unit vectors, not renormalised


def test_update_bases_is_the_authors_plain_average():
    """EMANet's train.py: mu *= momentum; mu += mean * (1 - momentum), with no renormalisation."""
    torch.manual_seed(0)
    block = EMAttention(4, num_bases=2, momentum=0.9)
    old = block.mu.clone()
    new = F.normalize(torch.randn(5, 4, 2), dim=1)
    block.update_bases(new)
    expected = 0.9 * old + 0.1 * new.mean(0, keepdim=True)
    assert torch.allclose(block.mu, expected)
    assert (block.mu.norm(dim=1) < 1 - 1e-3).all()  # shorter than one: five random directions disagree


def test_update_bases_renormalised_variant():
    torch.manual_seed(0)
    block = EMAttention(4, num_bases=2, momentum=0.9, normalize_initial_bases=True)
    old = block.mu.clone()
    new = F.normalize(torch.randn(5, 4, 2), dim=1)
    block.update_bases(new)
    expected = F.normalize(0.9 * old + 0.1 * new.mean(0, keepdim=True), dim=1)
    assert torch.allclose(block.mu, expected)
    assert torch.allclose(block.mu.norm(dim=1), torch.ones(1, 2), atol=1e-6)


def test_bad_input_errors():
    block = EMAttention(4, num_bases=2)
    with pytest.raises(ValueError, match=r"4 channels.*got shape \(1, 3, 5, 5\)"):
        block(torch.randn(1, 3, 5, 5))
    with pytest.raises(ValueError, match="floating-point"):
        block(torch.zeros(1, 4, 5, 5, dtype=torch.uint8))
    with pytest.raises(ValueError, match="iterations must be at least 1"):
        em_iterations(torch.randn(1, 4, 5), torch.randn(1, 4, 2), iterations=0)
    with pytest.raises(ValueError, match=r"bases must have shape .*C = 4.*got \(1, 3, 2\)"):
        em_iterations(torch.randn(1, 4, 5), torch.randn(1, 3, 2))
    with pytest.raises(ValueError, match="momentum must be in"):
        EMAttention(4, momentum=1.5)
    with pytest.raises(ValueError, match="must be positive"):
        EMAttention(4, num_bases=0)
    with pytest.raises(ValueError, match=r"bases must have shape \(B, 4, 2\)"):
        block.update_bases(torch.randn(2, 4, 3))
