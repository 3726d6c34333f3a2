"""Bottom-up saliency: where does an image itself pull the eye?

A small version of the saliency model of Itti, Koch & Niebur (1998), enough to show
what stimulus-driven attention can and cannot do:

1. **Feature maps** ``(4, H, W)``: red-green and green-red colour opponency, and the
   energy of vertical and of horizontal bars (a second derivative across the bar).
2. **Centre-surround contrast**: a feature matters where it differs from its
   surroundings, ``max(0, blur(F, sigma_c) - blur(F, sigma_s))``.
3. **Normalisation** ``N(.)``: rescale each map to ``[0, 1]`` and multiply it by
   ``(1 - mean of its other peaks)^2``, so a map with one strong peak (a unique feature)
   is promoted and a map with many equal peaks is suppressed.
4. **Saliency** = the sum of the normalised maps.

The paper works over a Gaussian pyramid with several centre and surround scales and an
intensity channel; this version keeps one scale and the four features the search scenes
of :mod:`attnlib.data.scenes` use.  Everything is a plain function of the image.

For *top-down* attention, :func:`location_keys` describes every grid cell by its four
feature strengths: keys that a query such as "red and vertical" can be scored against.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ._checks import check_rank, shape_str

__all__ = [
    "gaussian_blur",
    "feature_maps",
    "center_surround",
    "normalize_map",
    "saliency_map",
    "cell_average",
    "location_keys",
]


def gaussian_blur(maps: Tensor, sigma: float) -> Tensor:
    """Blur each map of ``(C, H, W)`` with a separable Gaussian (reflect padding)."""
    check_rank(maps, "maps", 3, "(C, H, W)")
    radius = max(1, int(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=maps.dtype)
    kernel = torch.exp(-(x**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()  # (K,)
    channels = maps.shape[0]
    out = F.pad(maps[None], (radius, radius, 0, 0), mode="reflect")  # (1, C, H, W + 2r)
    out = F.conv2d(out, kernel.view(1, 1, 1, -1).repeat(channels, 1, 1, 1), groups=channels)
    out = F.pad(out, (0, 0, radius, radius), mode="reflect")  # (1, C, H + 2r, W)
    out = F.conv2d(out, kernel.view(1, 1, -1, 1).repeat(channels, 1, 1, 1), groups=channels)
    return out[0]  # (C, H, W)


def feature_maps(image: Tensor) -> Tensor:
    """Colour and orientation feature maps of an RGB image.

    Args:
        image: ``(3, H, W)`` RGB in ``[0, 1]``.

    Returns:
        ``(4, H, W)``: red, green, vertical, horizontal (the order of
        :data:`attnlib.data.scenes.FEATURE_NAMES`), all non-negative.
    """
    check_rank(image, "image", 3, "(3, H, W)")
    if image.shape[0] != 3:
        raise ValueError(f"image must have 3 colour channels (3, H, W); got {shape_str(image.shape)}")
    r, g, _ = image
    intensity = image.mean(0)[None, None]  # (1, 1, H, W)
    red = (r - g).clamp(min=0)
    green = (g - r).clamp(min=0)
    second_diff = torch.tensor([-1.0, 2.0, -1.0], dtype=image.dtype)
    # A vertical bar is a ridge across x; a horizontal bar a ridge across y.
    across_x = F.conv2d(F.pad(intensity, (1, 1, 0, 0)), second_diff.view(1, 1, 1, 3))[0, 0].clamp(min=0)
    across_y = F.conv2d(F.pad(intensity, (0, 0, 1, 1)), second_diff.view(1, 1, 3, 1))[0, 0].clamp(min=0)
    energy = gaussian_blur(torch.stack([across_x, across_y]), 1.5)  # (2, H, W)
    vertical = (energy[0] - energy[1]).clamp(min=0)  # orientation-selective: subtract the other
    horizontal = (energy[1] - energy[0]).clamp(min=0)
    return torch.stack([red, green, vertical, horizontal])  # (4, H, W)


def center_surround(maps: Tensor, center_sigma: float = 2.0, surround_sigma: float = 8.0) -> Tensor:
    """``max(0, centre - surround)`` for each map of ``(C, H, W)``."""
    return (gaussian_blur(maps, center_sigma) - gaussian_blur(maps, surround_sigma)).clamp(min=0)


def normalize_map(m: Tensor, peak_window: int = 7, peak_floor: float = 0.1) -> Tensor:
    """Itti et al.'s ``N(.)`` on one ``(H, W)`` map.

    Rescales to ``[0, 1]``, finds local maxima (in ``peak_window`` x ``peak_window``
    neighbourhoods, above ``peak_floor``), and multiplies by ``(1 - m_bar)^2`` where
    ``m_bar`` is the mean of the peaks other than the global maximum.
    """
    check_rank(m, "m", 2, "(H, W)")
    m = m - m.min()
    m = m / m.max().clamp_min(1e-12)
    pooled = F.max_pool2d(m[None, None], peak_window, stride=1, padding=peak_window // 2)[0, 0]
    peaks = m[(m == pooled) & (m > peak_floor)]
    others_mean = (peaks.sum() - 1.0) / (peaks.numel() - 1) if peaks.numel() > 1 else m.new_zeros(())
    return m * (1.0 - others_mean) ** 2


def saliency_map(image: Tensor) -> tuple[Tensor, Tensor]:
    """Bottom-up saliency of an RGB image.

    Args:
        image: ``(3, H, W)`` RGB in ``[0, 1]``.

    Returns:
        ``(saliency, conspicuity)``: ``(H, W)`` saliency and the ``(4, H, W)`` normalised
        feature contrast maps it sums.
    """
    contrast = center_surround(feature_maps(image))  # (4, H, W)
    conspicuity = torch.stack([normalize_map(c) for c in contrast])  # (4, H, W)
    return conspicuity.sum(0), conspicuity


def cell_average(maps: Tensor, cell: int) -> Tensor:
    """Average ``(C, H, W)`` maps (or one ``(H, W)`` map) over ``cell`` x ``cell`` blocks.

    Returns:
        ``(N, C)`` (or ``(N,)``) with ``N = (H // cell) * (W // cell)``, row-major.
    """
    single = maps.dim() == 2
    maps = maps[None] if single else maps
    check_rank(maps, "maps", 3, "(C, H, W)")
    pooled = F.avg_pool2d(maps[None], cell)[0]  # (C, H / cell, W / cell)
    per_cell = pooled.flatten(1).T  # (N, C)
    return per_cell[:, 0] if single else per_cell


def location_keys(image: Tensor, cell: int) -> Tensor:
    """One key per grid cell: the cell's average feature strengths, for top-down attention.

    Args:
        image: ``(3, H, W)`` RGB in ``[0, 1]``.
        cell: grid cell size in pixels.

    Returns:
        ``(N, 4)`` keys in the order of :data:`attnlib.data.scenes.FEATURE_NAMES`, each
        feature divided by its largest value over the image so that it lies in ``[0, 1]``;
        a feature absent from the whole image stays 0 (no division by zero).
    """
    keys = cell_average(feature_maps(image), cell)  # (N, 4)
    return keys / keys.max(dim=0).values.clamp_min(1e-12)
