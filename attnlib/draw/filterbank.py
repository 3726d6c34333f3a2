"""DRAW's differentiable attention: an N x N grid of Gaussian filters, and read / write with it.

Gregor, Danihelka, Graves, Rezende and Wierstra, *DRAW: A Recurrent Neural Network For Image
Generation*, ICML 2015 (arXiv:1502.04623), section 3.  The Gaussian window over positions
follows Graves, *Generating Sequences With Recurrent Neural Networks*, 2013 (arXiv:1308.0850).

For an image ``x`` of ``B`` rows (height) and ``A`` columns (width), five numbers come from a
linear layer of the decoder state ``h`` (eq. 21):

    (g~_X, g~_Y, log sigma^2, log delta~, log gamma) = W h + b
    g_X = (A + 1) / 2 (g~_X + 1),    g_Y = (B + 1) / 2 (g~_Y + 1)          (eqs. 22, 23)
    delta = (max(A, B) - 1) / (N - 1) delta~                               (eq. 24)

The ``N`` filter centres along each axis are (eqs. 19, 20), for ``i = 1 .. N``:

    mu_X^i = g_X + (i - N/2 - 0.5) delta,      mu_Y^j = g_Y + (j - N/2 - 0.5) delta

and the filterbanks (eqs. 25, 26), each row normalised to sum to one:

    F_X[i, a] = exp(-(a - mu_X^i)^2 / (2 sigma^2)) / Z_X,    F_Y[j, b] likewise

with pixel coordinates ``a = 1 .. A`` and ``b = 1 .. B`` (the paper's 1-based coordinates:
``g~ = 0`` puts the grid's centre on the image's centre, and with ``N = A``, ``delta = 1`` the
centres fall exactly on the pixels).  Then

    read(x, x^, h)  = gamma [F_Y x F_X^T, F_Y x^ F_X^T]                     (eq. 27)
    write(h)        = 1/gamma^ F^_Y^T w F^_X,     w = W' h  (N x N)          (eqs. 28, 29)

Without attention (section 3.1), read is ``[x, x^]`` and write is a linear map of ``h``.

Recording: :class:`ReadAttention` and :class:`WriteAttention` :func:`~attnlib.record.emit`
their window as a ``(B, 5)`` tensor ``(g_X, g_Y, delta, sigma, gamma)`` in pixel units, one
entry per call; :func:`window_boxes` turns it into rectangles for plotting.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn

from attnlib._checks import check_floating, check_rank, shape_str
from attnlib.record import emit

__all__ = [
    "Window",
    "window_parameters",
    "filterbank",
    "read_glimpse",
    "write_patch",
    "window_boxes",
    "AttentionWindow",
    "ReadAttention",
    "ReadNoAttention",
    "ReadGlimpse",
    "WriteAttention",
    "WriteNoAttention",
]


class Window(NamedTuple):
    """The attention window of a batch, each field ``(B,)``, in pixel units (1-based coordinates)."""

    g_x: Tensor  #: grid centre, column coordinate in ``[1, A]`` when ``g~_X`` is in ``[-1, 1]``
    g_y: Tensor  #: grid centre, row coordinate
    delta: Tensor  #: stride between neighbouring filters
    sigma2: Tensor  #: variance of every filter
    gamma: Tensor  #: intensity (multiplies a read, divides a write)

    def as_tensor(self) -> Tensor:
        """``(B, 5)``: ``(g_X, g_Y, delta, sigma, gamma)``, the form that is emitted."""
        return torch.stack([self.g_x, self.g_y, self.delta, self.sigma2.sqrt(), self.gamma], dim=-1)  # (B, 5)


def _check_n(n: int) -> None:
    if n < 2:
        raise ValueError(f"the grid needs N >= 2 filters per axis (delta divides by N - 1); got N={n}")


def window_parameters(raw: Tensor, n: int, height: int, width: int) -> Window:
    """Eqs. 21 to 24: the window from the five raw numbers a linear layer produces.

    Args:
        raw: ``(B, 5)``: ``(g~_X, g~_Y, log sigma^2, log delta~, log gamma)``.
        n: ``N``, filters per axis (at least 2).
        height, width: ``B`` and ``A`` of the image, in pixels.

    Returns:
        A :class:`Window`.
    """
    check_rank(raw, "raw", 2, "(B, 5)")
    if raw.shape[1] != 5:
        raise ValueError(
            f"raw must have shape (B, 5) = (g_x, g_y, log sigma^2, log delta, log gamma); got {shape_str(raw.shape)}"
        )
    _check_n(n)
    gx_t, gy_t, log_sigma2, log_delta, log_gamma = raw.unbind(-1)  # each (B,)
    g_x = (width + 1) / 2 * (gx_t + 1)
    g_y = (height + 1) / 2 * (gy_t + 1)
    delta = (max(height, width) - 1) / (n - 1) * log_delta.exp()
    return Window(g_x, g_y, delta, log_sigma2.exp(), log_gamma.exp())


def _axis_filterbank(centre: Tensor, delta: Tensor, sigma2: Tensor, n: int, size: int) -> Tensor:
    i = torch.arange(1, n + 1, dtype=centre.dtype, device=centre.device)  # (N,)
    mu = centre[:, None] + (i - n / 2 - 0.5) * delta[:, None]  # (B, N)
    a = torch.arange(1, size + 1, dtype=centre.dtype, device=centre.device)  # (A,)
    log_f = -((a - mu[:, :, None]) ** 2) / (2 * sigma2[:, None, None])  # (B, N, A)
    return torch.softmax(log_f, dim=-1)  # (B, N, A): exp(log_f) / Z, rows sum to one


def filterbank(window: Window, n: int, height: int, width: int) -> tuple[Tensor, Tensor]:
    """Eqs. 19, 20, 25, 26: the horizontal and vertical filterbanks of ``window``.

    Args:
        window: a :class:`Window` of ``(B,)`` fields.
        n: ``N``, filters per axis.
        height, width: ``B`` and ``A`` of the image.

    Each row is normalised as a softmax over pixels, which is ``exp(...) / Z`` computed
    without underflow: with ``sigma`` far below a pixel, or a filter centred outside the
    image, a row still sums to one (all its weight on the nearest pixels) instead of 0 / 0.

    Returns:
        ``F_X`` ``(B, N, A)`` and ``F_Y`` ``(B, N, B)``, each row summing to one.
    """
    _check_n(n)
    f_x = _axis_filterbank(window.g_x, window.delta, window.sigma2, n, width)  # (B, N, A)
    f_y = _axis_filterbank(window.g_y, window.delta, window.sigma2, n, height)  # (B, N, B)
    return f_x, f_y


def read_glimpse(image: Tensor, f_x: Tensor, f_y: Tensor, gamma: Tensor) -> Tensor:
    """``gamma F_Y x F_X^T``: the ``N x N`` glimpse of ``image`` ``(B, H, W)``.

    Args:
        image: ``(B, H, W)``; f_x: ``(B, N, W)``; f_y: ``(B, N, H)``; gamma: ``(B,)``.

    Returns:
        ``(B, N, N)``.
    """
    return gamma[:, None, None] * (f_y @ image @ f_x.transpose(1, 2))  # (B, N, H) (B, H, W) (B, W, N) -> (B, N, N)


def write_patch(patch: Tensor, f_x: Tensor, f_y: Tensor, gamma: Tensor) -> Tensor:
    """``1/gamma F_Y^T w F_X``: an ``N x N`` patch spread over the image, the transpose of the read.

    Args:
        patch: ``(B, N, N)``; f_x: ``(B, N, W)``; f_y: ``(B, N, H)``; gamma: ``(B,)``.

    Returns:
        ``(B, H, W)``.
    """
    return (f_y.transpose(1, 2) @ patch @ f_x) / gamma[:, None, None]  # (B, H, N) (B, N, N) (B, N, W) -> (B, H, W)


def window_boxes(windows: Tensor, n: int) -> Tensor:
    """Rectangles covering the grids of emitted windows, for ``imshow`` coordinates.

    Args:
        windows: ``(..., 5)`` as emitted: ``(g_X, g_Y, delta, sigma, gamma)``.
        n: ``N``.

    Returns:
        ``(..., 4)``: ``(left, top, width, height)`` with pixel ``(row r, column c)`` at
        ``(c, r)`` (0-based, as ``imshow`` draws it): a square of side ``N delta`` around the centre.
    """
    g_x, g_y, delta = windows[..., 0], windows[..., 1], windows[..., 2]
    side = n * delta
    return torch.stack([g_x - 1 - side / 2, g_y - 1 - side / 2, side, side], dim=-1)  # (..., 4)


class AttentionWindow(nn.Module):
    """Eq. 21: the linear layer from a state ``h`` ``(B, hidden)`` to a :class:`Window`.

    Args:
        hidden_size: size of ``h``.
        n: ``N``, filters per axis (at least 2).
        height, width: the image's ``B`` and ``A``.

        initial_gamma: ``gamma`` of the initial window (1 for a read).

    Initial window (our choice; the paper gives none): the bias makes it centred, with
    ``delta~ = 1`` (the grid spans the image), ``sigma = delta / 2`` (neighbouring filters
    overlap, so the grid covers the image without gaps) and ``gamma = initial_gamma``.
    """

    def __init__(self, hidden_size: int, n: int, height: int, width: int, initial_gamma: float = 1.0) -> None:
        super().__init__()
        _check_n(n)
        self.n, self.height, self.width = n, height, width
        self.linear = nn.Linear(hidden_size, 5)
        delta = (max(height, width) - 1) / (n - 1)
        with torch.no_grad():
            self.linear.bias.copy_(torch.tensor([0.0, 0.0, 2 * math.log(delta / 2), 0.0, math.log(initial_gamma)]))

    def forward(self, h: Tensor) -> Window:
        return window_parameters(self.linear(h), self.n, self.height, self.width)  # fields (B,)


def _check_image(x: Tensor, name: str, height: int, width: int) -> None:
    check_rank(x, name, 3, "(B, H, W)")
    check_floating(x, name)
    if x.shape[1:] != (height, width):
        raise ValueError(f"{name} must have shape (B, {height}, {width}); got {shape_str(x.shape)}")


class ReadAttention(nn.Module):
    """Read with attention (eq. 27): two ``N x N`` glimpses, of ``x`` and of the error image ``x^``.

    Args:
        hidden_size, n, height, width: as in :class:`AttentionWindow`.

    ``forward(x, x_hat, h)``: ``x`` and ``x_hat`` ``(B, H, W)``, ``h`` ``(B, hidden)``;
    returns ``(B, 2 N^2)``.  Emits the window ``(B, 5)``.
    """

    def __init__(self, hidden_size: int, n: int, height: int, width: int) -> None:
        super().__init__()
        self.n, self.height, self.width = n, height, width
        self.window = AttentionWindow(hidden_size, n, height, width)

    @property
    def output_size(self) -> int:
        return 2 * self.n * self.n

    def forward(self, x: Tensor, x_hat: Tensor, h: Tensor) -> Tensor:
        _check_image(x, "x", self.height, self.width)
        _check_image(x_hat, "x_hat", self.height, self.width)
        window = self.window(h)
        emit(self, window.as_tensor())
        f_x, f_y = filterbank(window, self.n, self.height, self.width)  # (B, N, W), (B, N, H)
        glimpses = [read_glimpse(image, f_x, f_y, window.gamma) for image in (x, x_hat)]  # 2 x (B, N, N)
        return torch.cat([g.flatten(1) for g in glimpses], dim=1)  # (B, 2 N^2)


class ReadGlimpse(nn.Module):
    """One ``N x N`` glimpse of one image, ``gamma F_Y x F_X^T``, placed by a window from ``h``.

    The sensor of :class:`~attnlib.draw.read_classifier.DRAWReadClassifier` (eq. 27 without
    the error image).  ``forward(x, h)``: ``x`` ``(B, H, W)``, ``h`` ``(B, hidden)``; returns
    ``(B, N, N)``.  Emits the window ``(B, 5)``.
    """

    def __init__(self, hidden_size: int, n: int, height: int, width: int) -> None:
        super().__init__()
        self.n, self.height, self.width = n, height, width
        self.window = AttentionWindow(hidden_size, n, height, width)

    def forward(self, x: Tensor, h: Tensor) -> Tensor:
        _check_image(x, "x", self.height, self.width)
        window = self.window(h)
        emit(self, window.as_tensor())
        f_x, f_y = filterbank(window, self.n, self.height, self.width)  # (B, N, W), (B, N, H)
        return read_glimpse(x, f_x, f_y, window.gamma)  # (B, N, N)


class ReadNoAttention(nn.Module):
    """Read without attention: ``[x, x^]`` flattened, ``(B, 2 H W)`` (``h`` is ignored)."""

    def __init__(self, height: int, width: int) -> None:
        super().__init__()
        self.height, self.width = height, width

    @property
    def output_size(self) -> int:
        return 2 * self.height * self.width

    def forward(self, x: Tensor, x_hat: Tensor, h: Tensor) -> Tensor:
        _check_image(x, "x", self.height, self.width)
        _check_image(x_hat, "x_hat", self.height, self.width)
        return torch.cat([x.flatten(1), x_hat.flatten(1)], dim=1)  # (B, 2 H W)


class WriteAttention(nn.Module):
    """Write with attention (eqs. 28, 29): an ``N x N`` patch ``w = W' h`` placed by its own window.

    ``forward(h)``: ``h`` ``(B, hidden)``; returns ``(B, H, W)``.  Emits the window ``(B, 5)``.

    Each row of a filterbank sums to one, so a patch value is spread over about ``H W / N^2``
    pixels; the initial ``gamma = N^2 / (H W)`` undoes that spreading (``1 / gamma`` multiplies
    the write), so that the first writes change the canvas by about the patch's own values
    (our choice; with ``gamma = 1`` the first writes are some 30 times fainter on MNIST and
    learning starts much more slowly).
    """

    def __init__(self, hidden_size: int, n: int, height: int, width: int) -> None:
        super().__init__()
        self.n, self.height, self.width = n, height, width
        self.window = AttentionWindow(hidden_size, n, height, width, initial_gamma=n * n / (height * width))
        self.patch = nn.Linear(hidden_size, n * n)

    def forward(self, h: Tensor) -> Tensor:
        window = self.window(h)
        emit(self, window.as_tensor())
        f_x, f_y = filterbank(window, self.n, self.height, self.width)  # (B, N, W), (B, N, H)
        w = self.patch(h).view(-1, self.n, self.n)  # (B, N, N)
        return write_patch(w, f_x, f_y, window.gamma)  # (B, H, W)


class WriteNoAttention(nn.Module):
    """Write without attention: a linear map of ``h`` to the whole image, ``(B, H, W)``."""

    def __init__(self, hidden_size: int, height: int, width: int) -> None:
        super().__init__()
        self.height, self.width = height, width
        self.linear = nn.Linear(hidden_size, height * width)

    def forward(self, h: Tensor) -> Tensor:
        return self.linear(h).view(-1, self.height, self.width)  # (B, H, W)
