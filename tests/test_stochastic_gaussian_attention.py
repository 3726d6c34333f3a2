"""attnlib.stochastic.gaussian_attention: the 2-D kernel map, its agreement with DRAW, the module."""

from __future__ import annotations

import pytest
import torch

from attnlib import record_attention
from attnlib.draw import Window, filterbank
from attnlib.stochastic import GaussianAttention, GaussianParams, gaussian_attention_map, gaussian_params


def _params(mx, my, sx, sy, rho) -> GaussianParams:
    return GaussianParams(*(torch.tensor([v], dtype=torch.float64) for v in (mx, my, sx, sy, rho)))


@pytest.mark.parametrize("size", [(9, 9), (6, 11)])
def test_map_on_the_simplex_and_peaked_at_the_mean(size):
    h, w = size
    a = gaussian_attention_map(_params(0.5, -0.5, 0.2, 0.3, 0.4), h, w)
    assert a.shape == (1, 1, h, w)
    assert torch.isclose(a.sum(), torch.tensor(1.0, dtype=torch.float64)) and (a >= 0).all()
    row, col = divmod(a.flatten().argmax().item(), w)
    ys, xs = torch.linspace(-1, 1, h), torch.linspace(-1, 1, w)
    assert abs(xs[col] - 0.5) <= 1 / (w - 1) + 1e-6 and abs(ys[row] + 0.5) <= 1 / (h - 1) + 1e-6


def test_matches_the_density_formula():
    p = _params(0.1, -0.2, 0.3, 0.5, -0.6)
    a = gaussian_attention_map(p, 5, 7)[0, 0]
    cov = torch.tensor([[0.09, -0.6 * 0.15], [-0.6 * 0.15, 0.25]], dtype=torch.float64)
    dist = torch.distributions.MultivariateNormal(torch.tensor([0.1, -0.2], dtype=torch.float64), cov)
    ys, xs = torch.meshgrid(
        torch.linspace(-1, 1, 5, dtype=torch.float64), torch.linspace(-1, 1, 7, dtype=torch.float64), indexing="ij"
    )
    dens = dist.log_prob(torch.stack([xs, ys], -1)).exp()
    assert torch.allclose(a, dens / dens.sum(), atol=1e-12)


def test_isotropic_map_is_the_outer_product_of_draws_filters():
    # DRAW: 1-based pixel coordinates; one unit of [-1, 1] is (size - 1) / 2 pixels.  DRAW's filters
    # share one sigma in pixels, so the comparison takes a square image.
    h = w = 10
    mx, my, s = 0.3, -0.4, 0.25
    a = gaussian_attention_map(_params(mx, my, s, s, 0.0), h, w)[0, 0]
    one = torch.ones(1, dtype=torch.float64)
    window = Window(
        one * (1 + (mx + 1) * (w - 1) / 2),
        one * (1 + (my + 1) * (h - 1) / 2),
        one * 0.0,
        one * (s * (w - 1) / 2) ** 2,
        one,
    )
    f_x, f_y = filterbank(window, 2, h, w)  # delta = 0: both rows are the same filter at the centre
    assert torch.allclose(a, f_y[0, 0][:, None] * f_x[0, 0][None, :], atol=1e-12)


def test_correlation_tilts_the_map():
    pos = gaussian_attention_map(_params(0, 0, 0.5, 0.5, 0.8), 9, 9)[0, 0]
    assert pos[8, 8] > 10 * pos[0, 8]  # mass along the diagonal y = x (bottom-right), not y = -x


def test_params_ranges():
    p = gaussian_params(torch.tensor([[10.0, -10.0, -20.0, 5.0, 30.0]]))
    assert -1 <= p.mean_y.item() <= p.mean_x.item() <= 1
    assert p.std_x.item() >= 0.02 and abs(p.rho.item()) < 0.96


@pytest.mark.parametrize("state_size", [None, 6])
def test_module_glimpse_shapes_recording_and_gradient(state_size):
    torch.manual_seed(0)
    attn = GaussianAttention(3, 8, 8, state_size=state_size)
    x = torch.randn(2, 3, 8, 8)
    state = torch.randn(2, 6, requires_grad=True) if state_size else None
    with record_attention(attn) as maps:
        glimpse = attn(x, state)
    a = maps.last(attn)
    assert glimpse.shape == (2, 3) and a.shape == (2, 1, 8, 8)
    assert torch.allclose(glimpse, (a * x).sum((2, 3)), atol=1e-6)
    glimpse.sum().backward()
    assert attn.head.weight.grad is not None and attn.head.weight.grad.abs().sum() > 0


def test_bad_input_errors():
    attn = GaussianAttention(3, 8, 8)
    with pytest.raises(ValueError, match=r"shape \(B, 3, 8, 8\); got \(2, 3, 7, 8\)"):
        attn(torch.randn(2, 3, 7, 8))
    with pytest.raises(ValueError, match="3 channels"):
        attn(torch.randn(2, 4, 8, 8))
    with pytest.raises(ValueError, match=r"raw must have shape \(B, 5\)"):
        gaussian_params(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="predicts from a state"):
        GaussianAttention(3, 8, 8, state_size=4)(torch.randn(1, 3, 8, 8))
