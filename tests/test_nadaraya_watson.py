"""attnlib.nadaraya_watson: Nadaraya-Watson kernel regression."""

from __future__ import annotations

import math

import pytest
import torch

from attnlib import NadarayaWatson, leave_one_out_mask, nadaraya_watson
from attnlib.nadaraya_watson import boxcar_log_kernel, epanechnikov_log_kernel, gaussian_log_kernel


def reference(xq, xt, yt, h, kernel):
    """Direct formula: sum_i K(u_i) y_i / sum_j K(u_j), with loops."""
    out = []
    for x in xq.tolist():
        ks = [kernel((x - xi) / h) for xi in xt.tolist()]
        total = sum(ks)
        out.append(sum(k * y for k, y in zip(ks, yt.tolist())) / total if total > 0 else 0.0)
    return torch.tensor(out, dtype=torch.float64)


KERNELS = {
    "gaussian": (gaussian_log_kernel, lambda u: math.exp(-u * u / 2)),
    "boxcar": (boxcar_log_kernel, lambda u: 1.0 if abs(u) <= 1 else 0.0),
    "epanechnikov": (epanechnikov_log_kernel, lambda u: max(0.0, 1 - u * u)),
}


@pytest.mark.parametrize("name", list(KERNELS))
@pytest.mark.parametrize("h", [0.3, 1.0, 2.5])
def test_matches_the_kernel_regression_formula(name, h):
    gen = torch.Generator().manual_seed(0)
    xt = torch.rand(20, generator=gen, dtype=torch.float64) * 5
    yt = torch.sin(xt) + 0.1 * torch.randn(20, generator=gen, dtype=torch.float64)
    xq = torch.linspace(0, 5, 11, dtype=torch.float64)
    log_kernel, kernel = KERNELS[name]
    y_hat, weights = nadaraya_watson(xq, xt, yt, h, log_kernel=log_kernel)
    assert torch.allclose(y_hat, reference(xq, xt, yt, h, kernel), atol=1e-12)
    assert weights.shape == (11, 20)


def test_bandwidth_limits_nearest_neighbour_and_mean():
    xt = torch.tensor([0.0, 1.0, 2.0, 3.0], dtype=torch.float64)
    yt = torch.tensor([5.0, -1.0, 2.0, 7.0], dtype=torch.float64)
    near, _ = nadaraya_watson(torch.tensor([0.9, 2.2], dtype=torch.float64), xt, yt, 1e-2)
    assert torch.allclose(near, torch.tensor([-1.0, 2.0], dtype=torch.float64))
    far, w = nadaraya_watson(torch.tensor([0.9, 2.2], dtype=torch.float64), xt, yt, 1e4)
    assert torch.allclose(far, yt.mean().expand(2)) and torch.allclose(w, torch.full((2, 4), 0.25, dtype=torch.float64))


def test_no_point_in_support_gives_zero_weights_not_nan():
    y_hat, w = nadaraya_watson(
        torch.tensor([10.0]), torch.tensor([0.0, 1.0]), torch.tensor([1.0, 2.0]), 0.5, log_kernel=boxcar_log_kernel
    )
    assert torch.equal(w, torch.zeros(1, 2)) and torch.equal(y_hat, torch.zeros(1))


def test_multivariate_inputs_and_targets():
    gen = torch.Generator().manual_seed(1)
    xt, yt, xq = torch.randn(30, 2, generator=gen), torch.randn(30, 3, generator=gen), torch.randn(4, 2, generator=gen)
    y_hat, w = nadaraya_watson(xq, xt, yt, 0.7)
    expected = torch.softmax(-((xq[:, None] - xt[None]) ** 2).sum(-1) / (2 * 0.49), dim=-1)
    assert torch.allclose(w, expected, atol=1e-6) and torch.allclose(y_hat, expected @ yt, atol=1e-6)


def test_leave_one_out_mask_hides_each_point_from_itself():
    x = torch.linspace(0, 1, 5)
    _, w = nadaraya_watson(x, x, x, 0.01, mask=leave_one_out_mask(5))
    assert torch.equal(w.diagonal(), torch.zeros(5))
    assert torch.allclose(w.sum(-1), torch.ones(5))


def test_learned_bandwidth_collapses_without_leave_one_out_and_not_with_it():
    gen = torch.Generator().manual_seed(2)
    x = torch.sort(torch.rand(60, generator=gen) * 5).values
    y = 2 * torch.sin(x) + x**0.8 + 0.5 * torch.randn(60, generator=gen)

    def train(mask):
        model = NadarayaWatson(bandwidth=1.0, learnable=True)
        opt = torch.optim.Adam(model.parameters(), lr=0.05)
        for _ in range(300):
            loss = ((model(x, x, y, mask) - y) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        return model.bandwidth.item()

    h_naive, h_loo = train(None), train(leave_one_out_mask(60))
    assert h_naive < 0.05, f"without leave-one-out h should collapse towards 0; got {h_naive:.3f}"
    assert 0.1 < h_loo < 1.0, f"leave-one-out should find a moderate bandwidth; got {h_loo:.3f}"


def test_module_fixed_versus_learnable_and_gradient():
    fixed, learn = NadarayaWatson(0.5, learnable=False), NadarayaWatson(0.5, learnable=True)
    assert len(list(fixed.parameters())) == 0 and len(list(learn.parameters())) == 1
    assert abs(fixed.bandwidth.item() - 0.5) < 1e-7
    x = torch.linspace(0, 3, 10)
    learn(x[:3], x, torch.sin(x)).sum().backward()
    assert learn.log_bandwidth.grad is not None and learn.log_bandwidth.grad.abs() > 0
    assert "learnable" in repr(learn) and "fixed" in repr(fixed)


def test_bad_input():
    x = torch.rand(5)
    with pytest.raises(ValueError, match=r"bandwidth must be a positive scalar; got -1"):
        nadaraya_watson(x, x, x, -1.0)
    with pytest.raises(ValueError, match=r"x_query must have shape \(N,\) or \(N, D\); got \(2, 2, 2\)"):
        nadaraya_watson(torch.rand(2, 2, 2), x, x, 1.0)
    with pytest.raises(ValueError, match=r"same number of features D: x_query \(3, 2\), x_train \(5,\)"):
        nadaraya_watson(torch.rand(3, 2), x, x, 1.0)
    with pytest.raises(ValueError, match=r"y_train must have shape \(N,\) or \(N, P\) with N = 5 .* got \(4,\)"):
        nadaraya_watson(x, x, torch.rand(4), 1.0)
    with pytest.raises(ValueError, match="bandwidth must be > 0"):
        NadarayaWatson(0.0)
