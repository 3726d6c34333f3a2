"""attnlib.draw.filterbank: DRAW's Gaussian filterbank, read and write (Gregor et al. 2015, section 3)."""

from __future__ import annotations

import math

import pytest
import torch

import attnlib
from attnlib.draw import (
    AttentionWindow,
    ReadAttention,
    ReadGlimpse,
    ReadNoAttention,
    WriteAttention,
    WriteNoAttention,
    filterbank,
    read_glimpse,
    window_boxes,
    window_parameters,
    write_patch,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def identity_raw(batch: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Centred grid, delta~ = 1, sigma^2 = e^-12 (far below a pixel), gamma = 1."""
    return torch.tensor([[0.0, 0.0, -12.0, 0.0, 0.0]], dtype=dtype).repeat(batch, 1)


@pytest.mark.parametrize("n, height, width", [(2, 28, 28), (5, 28, 28), (12, 60, 60), (3, 10, 17)])
def test_rows_sum_to_one(n, height, width):
    torch.manual_seed(0)
    raw = torch.randn(6, 5, dtype=torch.float64) * 3  # tiny and huge sigma, windows partly outside the image
    f_x, f_y = filterbank(window_parameters(raw, n, height, width), n, height, width)
    assert f_x.shape == (6, n, width) and f_y.shape == (6, n, height)
    for f in (f_x, f_y):
        assert (f >= 0).all() and torch.isfinite(f).all()
        assert torch.allclose(f.sum(-1), torch.ones(6, n, dtype=torch.float64), atol=1e-12), f.sum(-1)


def test_centres_follow_the_paper():
    """g~ = 0 centres the grid at (A + 1) / 2; neighbouring filters are delta apart."""
    raw = torch.tensor([[0.0, 0.0, -12.0, math.log(0.5), 0.0]], dtype=torch.float64)
    n, size = 4, 29  # delta = (29 - 1) / 3 * 0.5 = 14 / 3
    window = window_parameters(raw, n, size, size)
    assert window.g_x.item() == pytest.approx(15.0) and window.delta.item() == pytest.approx(14 / 3)
    f_x, _ = filterbank(window, n, size, size)
    expected = 15.0 + (torch.arange(1, n + 1, dtype=torch.float64) - n / 2 - 0.5) * 14 / 3  # 8, 12.67, 17.33, 22
    # tiny sigma: each filter puts all its weight on the pixel nearest its centre (1-based)
    assert torch.equal(f_x[0].argmax(-1) + 1, expected.round().long()), f_x[0].argmax(-1) + 1
    assert torch.allclose(f_x[0].max(-1).values, torch.ones(n, dtype=torch.float64))


@pytest.mark.parametrize("size", [5, 12, 28])
def test_read_with_n_equal_to_the_image_size_returns_the_image(size):
    torch.manual_seed(1)
    image = torch.rand(3, size, size, dtype=torch.float64)
    window = window_parameters(identity_raw(3), size, size, size)
    assert torch.allclose(window.delta, torch.ones(3, dtype=torch.float64))
    f_x, f_y = filterbank(window, size, size, size)
    glimpse = read_glimpse(image, f_x, f_y, window.gamma)
    assert torch.allclose(glimpse, image, atol=1e-12), (glimpse - image).abs().max()


def test_read_is_a_blurred_average_with_a_wide_window():
    """sigma much wider than the image: every filter averages the whole row, the glimpse is the mean."""
    image = torch.rand(2, 9, 9, dtype=torch.float64)
    raw = torch.tensor([[0.0, 0.0, 12.0, 0.0, 0.0]], dtype=torch.float64).repeat(2, 1)
    window = window_parameters(raw, 3, 9, 9)
    glimpse = read_glimpse(image, *filterbank(window, 3, 9, 9), window.gamma)
    assert torch.allclose(glimpse, image.mean((1, 2))[:, None, None].expand(2, 3, 3), atol=1e-4)


@pytest.mark.parametrize("n, height, width", [(2, 28, 28), (5, 11, 7)])
def test_write_is_the_transpose_of_read(n, height, width):
    """<read(x), w> = gamma^2 <x, write(w)>: with gamma = 1, write is read's adjoint."""
    torch.manual_seed(2)
    raw = torch.randn(4, 5, dtype=torch.float64) * 0.5
    window = window_parameters(raw, n, height, width)
    f_x, f_y = filterbank(window, n, height, width)
    x = torch.randn(4, height, width, dtype=torch.float64)
    w = torch.randn(4, n, n, dtype=torch.float64)
    lhs = (read_glimpse(x, f_x, f_y, window.gamma) * w).sum((1, 2))
    rhs = window.gamma**2 * (x * write_patch(w, f_x, f_y, window.gamma)).sum((1, 2))
    assert torch.allclose(lhs, rhs, atol=1e-10), (lhs - rhs).abs().max()
    ones = torch.ones(4, dtype=torch.float64)
    assert torch.allclose(write_patch(w, f_x, f_y, ones), f_y.transpose(1, 2) @ w @ f_x)


def test_gradients_reach_every_window_parameter():
    torch.manual_seed(3)
    raw = (torch.randn(2, 5, dtype=torch.float64) * 0.3).requires_grad_()
    image = torch.rand(2, 12, 12, dtype=torch.float64)
    window = window_parameters(raw, 4, 12, 12)
    glimpse = read_glimpse(image, *filterbank(window, 4, 12, 12), window.gamma)
    (glimpse * torch.randn_like(glimpse)).sum().backward()
    assert raw.grad is not None
    grad_per_parameter = raw.grad.abs().sum(0)  # g_x, g_y, log sigma^2, log delta, log gamma
    assert (grad_per_parameter > 1e-8).all(), grad_per_parameter


def test_gradcheck_read_and_write():
    torch.manual_seed(4)
    raw = (torch.randn(2, 5, dtype=torch.float64) * 0.3).requires_grad_()
    image = torch.rand(2, 7, 6, dtype=torch.float64)
    patch = torch.randn(2, 3, 3, dtype=torch.float64, requires_grad=True)

    def read(r: torch.Tensor) -> torch.Tensor:
        window = window_parameters(r, 3, 7, 6)
        return read_glimpse(image, *filterbank(window, 3, 7, 6), window.gamma)

    def write(r: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        window = window_parameters(r, 3, 7, 6)
        return write_patch(w, *filterbank(window, 3, 7, 6), window.gamma)

    assert torch.autograd.gradcheck(read, (raw,))
    assert torch.autograd.gradcheck(write, (raw, patch))


def test_modules_emit_their_windows_and_train_the_window_layer():
    torch.manual_seed(5)
    read, write = ReadAttention(16, 2, 28, 28), WriteAttention(16, 5, 28, 28)
    x, h = torch.rand(3, 28, 28), torch.randn(3, 16)
    model = torch.nn.ModuleDict({"read": read, "write": write})
    with attnlib.record_attention(model) as maps:
        r = read(x, x - 0.5, h)
        canvas = write(h)
    assert r.shape == (3, 2 * 2 * 2) and read.output_size == 8
    assert canvas.shape == (3, 28, 28)
    assert maps.names() == ["read", "write"]
    assert maps.last("read").shape == (3, 5) and maps.last("write").shape == (3, 5)
    (r.sum() + canvas.sum()).backward()
    for layer in (read.window.linear, write.window.linear):
        assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0


def test_initial_windows_span_the_image():
    window = AttentionWindow(8, 5, 28, 28)(torch.zeros(1, 8))
    assert window.g_x.item() == pytest.approx(14.5) and window.g_y.item() == pytest.approx(14.5)
    assert window.delta.item() == pytest.approx(27 / 4)
    assert window.sigma2.sqrt().item() == pytest.approx(27 / 8)
    assert window.gamma.item() == pytest.approx(1.0)
    write_window = WriteAttention(8, 5, 28, 28).window(torch.zeros(1, 8))
    assert write_window.gamma.item() == pytest.approx(25 / 784)


def test_window_boxes():
    windows = torch.tensor([[14.5, 14.5, 1.0, 0.01, 1.0], [10.0, 20.0, 2.0, 1.0, 1.0]])
    boxes = window_boxes(windows, 28)
    assert torch.allclose(boxes[0], torch.tensor([-0.5, -0.5, 28.0, 28.0]))
    assert torch.allclose(boxes[1], torch.tensor([10.0 - 1 - 28, 20.0 - 1 - 28, 56.0, 56.0]))


def test_reads_and_writes_without_attention():
    x = torch.rand(2, 5, 4)
    read = ReadNoAttention(5, 4)
    out = read(x, 1 - x, torch.zeros(2, 3))
    assert out.shape == (2, read.output_size) == (2, 40)
    assert torch.equal(out, torch.cat([x.flatten(1), (1 - x).flatten(1)], 1))
    assert WriteNoAttention(3, 5, 4)(torch.zeros(2, 3)).shape == (2, 5, 4)


def test_read_glimpse_module():
    torch.manual_seed(6)
    glimpse = ReadGlimpse(8, 6, 20, 20)(torch.rand(2, 20, 20), torch.randn(2, 8))
    assert glimpse.shape == (2, 6, 6)


def test_bad_input():
    with pytest.raises(ValueError, match=r"raw must have shape \(B, 5\).*got \(2, 4\)"):
        window_parameters(torch.zeros(2, 4), 3, 10, 10)
    with pytest.raises(ValueError, match="N >= 2.*got N=1"):
        window_parameters(torch.zeros(2, 5), 1, 10, 10)
    with pytest.raises(ValueError, match="N >= 2"):
        AttentionWindow(4, 1, 10, 10)
    read = ReadAttention(4, 2, 10, 10)
    with pytest.raises(ValueError, match=r"x must have shape \(B, 10, 10\); got \(2, 10, 9\)"):
        read(torch.zeros(2, 10, 9), torch.zeros(2, 10, 10), torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"x_hat must have exactly 3 dimensions"):
        read(torch.zeros(2, 10, 10), torch.zeros(2, 1, 10, 10), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="floating-point"):
        ReadNoAttention(10, 10)(torch.zeros(2, 10, 10, dtype=torch.long), torch.zeros(2, 10, 10), torch.zeros(2, 4))
