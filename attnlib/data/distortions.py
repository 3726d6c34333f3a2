"""Distorted MNIST: the four variants of the Spatial Transformer paper, generated reproducibly.

Jaderberg, Simonyan, Zisserman & Kavukcuoglu, "Spatial Transformer Networks", NeurIPS 2015
(arXiv:1506.02025), test their models on MNIST digits distorted in four ways (section 4.1
and appendix A.1 of the paper):

* ``"R"``   rotation by an angle drawn uniformly from [-90, 90] degrees; 28 x 28 output.
* ``"RTS"`` rotation in [-45, 45] degrees, scale in [0.7, 1.2], and a random translation
  that places the digit somewhere in a 42 x 42 canvas; 42 x 42 output.
* ``"P"``   a projective transformation: the image corners are moved by independent
  Gaussian offsets, then the result is scaled by a factor in [0.75, 1]; 28 x 28 output.
* ``"E"``   an elastic deformation: a random displacement field, smoothed; 28 x 28 output.

What is ours, not the paper's: the size of the corner offsets of ``"P"``
(``corner_std = 0.1`` of the half-width) and the elastic field of ``"E"``, which follows
the recipe of Simard, Steinkraus & Platt (ICDAR 2003): uniform noise in [-1, 1] per pixel
and axis, smoothed by a Gaussian of ``sigma = 4`` pixels and scaled by ``alpha = 34``
pixels.  The translation range of ``"RTS"`` keeps the scaled (unrotated) 28 x 28 digit box
inside the canvas.

Geometry.  Every variant is a map ``F`` from input pixel positions to output positions,
measured in pixels from the image centre with ``x`` to the right and ``y`` *down* (image
rows).  A positive angle turns the digit counter-clockwise as seen on screen::

    F(p) = shift + scale * M p,   M = [[cos a, sin a], [-sin a, cos a]]   (R, RTS)
    F    = the homography taking the corners c_k to scale * (c_k + corner_std * eps_k)   (P)

The output is sampled backwards, as a Spatial Transformer does: output pixel ``q`` reads the
input at ``F^{-1}(q)`` (plus the displacement field for ``"E"``) with bilinear
interpolation (``torch.nn.functional.grid_sample``, zeros outside the input).

Randomness.  Example ``i`` draws its parameters from its own generator, seeded by a hash
of ``(seed, i)``, so any example can be regenerated alone, in any batch, in any order.
:func:`load_distorted_mnist` numbers the 60000 training images 0..59999 and the 10000 test
images 60000..69999, so the two splits never share a distortion.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from attnlib._checks import check_rank, check_tensor, shape_str
from attnlib.data.mnist import load_mnist

__all__ = [
    "VARIANTS",
    "OUTPUT_SIZE",
    "Distortion",
    "sample_distortion",
    "apply_distortion",
    "distort_mnist",
    "load_distorted_mnist",
]

#: The four variants, in the order of the paper's Table 1.
VARIANTS = ("R", "RTS", "P", "E")
#: Output side length of each variant.
OUTPUT_SIZE = {"R": 28, "RTS": 42, "P": 28, "E": 28}

_IN = 28  # MNIST side length
_CORNER_STD = 0.1  # P: corner offsets, in units of the half-width (our choice)
_ELASTIC_ALPHA = 34.0  # E: field strength in pixels (Simard et al., 2003)
_ELASTIC_SIGMA = 4.0  # E: smoothing in pixels (Simard et al., 2003)
_CHUNK = 4096  # examples warped at once (bounds memory)
_TEST_OFFSET = 60000  # test image i is example 60000 + i


@dataclass(frozen=True)
class Distortion:
    """The sampled parameters of ``N`` distortions (one row per example).

    Attributes:
        variant: one of :data:`VARIANTS`.
        angle: ``(N,)`` rotation in degrees, counter-clockwise on screen (0 for P and E).
        scale: ``(N,)`` scale factor (1 for R and E).
        shift: ``(N, 2)`` translation ``(x, y)`` in output pixels (0 except for RTS).
        corners: ``(N, 4, 2)`` offsets of the corners top-left, top-right, bottom-right,
            bottom-left, in units of the half-width (0 except for P).
        flow: ``(N, 2, 28, 28)`` displacement ``(dx, dy)`` in input pixels added to each
            output pixel's sampling position (E), or ``None``.
    """

    variant: str
    angle: Tensor
    scale: Tensor
    shift: Tensor
    corners: Tensor
    flow: Optional[Tensor] = None

    @property
    def size(self) -> int:
        """Output side length ``S``."""
        return OUTPUT_SIZE[self.variant]

    def forward_matrix(self) -> Tensor:
        """``(N, 3, 3)`` homography ``F`` from input to output pixel offsets (from the centre)."""
        n = self.angle.shape[0]
        a = torch.deg2rad(self.angle.double())  # (N,)
        cos, sin = torch.cos(a), torch.sin(a)
        s = self.scale.double()
        mat = torch.zeros(n, 3, 3, dtype=torch.float64)
        mat[:, 0, 0], mat[:, 0, 1] = s * cos, s * sin
        mat[:, 1, 0], mat[:, 1, 1] = -s * sin, s * cos
        mat[:, :2, 2] = self.shift.double()
        mat[:, 2, 2] = 1.0
        if self.variant == "P":
            half = _IN / 2
            src = _UNIT_CORNERS.expand(n, 4, 2) * half  # (N, 4, 2)
            dst = (_UNIT_CORNERS + self.corners.double()) * half * s[:, None, None]  # (N, 4, 2)
            mat = _homography(src, dst)  # (N, 3, 3)
        return mat

    def sampling_matrix(self) -> Tensor:
        """``(N, 3, 3)`` map from output to input coordinates, both normalised to [-1, 1]."""
        out_half, in_half = self.size / 2, _IN / 2
        to_out_pixels = torch.diag(torch.tensor([out_half, out_half, 1.0], dtype=torch.float64))
        to_in_normal = torch.diag(torch.tensor([1 / in_half, 1 / in_half, 1.0], dtype=torch.float64))
        return to_in_normal @ torch.linalg.inv(self.forward_matrix()) @ to_out_pixels  # (N, 3, 3)

    def __getitem__(self, index: slice | Tensor) -> "Distortion":
        flow = None if self.flow is None else self.flow[index]
        return Distortion(
            self.variant, self.angle[index], self.scale[index], self.shift[index], self.corners[index], flow
        )


_UNIT_CORNERS = torch.tensor([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]], dtype=torch.float64)


def _homography(src: Tensor, dst: Tensor) -> Tensor:
    """``(N, 3, 3)`` homographies taking the 4 points ``src`` ``(N, 4, 2)`` to ``dst`` (DLT, h33 = 1)."""
    n = src.shape[0]
    x, y = src[..., 0], src[..., 1]  # (N, 4)
    u, v = dst[..., 0], dst[..., 1]  # (N, 4)
    zeros, ones = torch.zeros_like(x), torch.ones_like(x)
    rows_u = torch.stack([x, y, ones, zeros, zeros, zeros, -u * x, -u * y], dim=-1)  # (N, 4, 8)
    rows_v = torch.stack([zeros, zeros, zeros, x, y, ones, -v * x, -v * y], dim=-1)  # (N, 4, 8)
    system = torch.cat([rows_u, rows_v], dim=1)  # (N, 8, 8)
    h = torch.linalg.solve(system, torch.cat([u, v], dim=1))  # (N, 8)
    return torch.cat([h, torch.ones(n, 1, dtype=h.dtype)], dim=1).view(n, 3, 3)  # (N, 3, 3)


def _example_seed(seed: int, index: int) -> int:
    """A 63-bit seed for example ``index``: splitmix64 of (seed, index), so nearby seeds differ."""
    z = (seed * 0x9E3779B97F4A7C15 + index + 1) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return (z ^ (z >> 31)) & 0x7FFFFFFFFFFFFFFF


def _check_variant(variant: object) -> str:
    if not isinstance(variant, str) or variant not in VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(map(repr, VARIANTS))}; got {variant!r}")
    return variant


def _gaussian_smooth(field: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of ``(N, C, H, W)`` with zero padding (truncated at 3 sigma)."""
    radius = int(3 * sigma)
    t = torch.arange(-radius, radius + 1, dtype=field.dtype)  # (K,)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    kernel = kernel / kernel.sum()
    n, c, h, w = field.shape
    flat = field.reshape(n * c, 1, h, w)  # (N*C, 1, H, W)
    flat = F.conv2d(flat, kernel.view(1, 1, 1, -1), padding=(0, radius))  # blur along x
    flat = F.conv2d(flat, kernel.view(1, 1, -1, 1), padding=(radius, 0))  # blur along y
    return flat.view(n, c, h, w)


def sample_distortion(variant: str, seed: int, indices: Union[Tensor, range, Sequence[int]]) -> Distortion:
    """Draw the distortion parameters of examples ``indices`` (pure function of ``(seed, i)``).

    Args:
        variant: ``"R"``, ``"RTS"``, ``"P"`` or ``"E"``.
        seed: the data set's seed.
        indices: ``(N,)`` example numbers.

    Returns:
        A :class:`Distortion` with ``N`` rows.

    Raises:
        ValueError: unknown variant.
    """
    variant = _check_variant(variant)
    idx = [int(i) for i in indices]
    n = len(idx)
    draws = torch.empty(n, 10, dtype=torch.float64)  # uniform numbers per example
    normals = torch.empty(n, 8, dtype=torch.float64)  # Gaussian numbers per example (P)
    noise = torch.empty(n, 2, _IN, _IN) if variant == "E" else None  # uniform field (E)
    for row, i in enumerate(idx):
        g = torch.Generator().manual_seed(_example_seed(seed, i))
        draws[row] = torch.rand(10, generator=g, dtype=torch.float64)
        normals[row] = torch.randn(8, generator=g, dtype=torch.float64)
        if noise is not None:
            noise[row] = torch.rand(2, _IN, _IN, generator=g)
    angle = torch.zeros(n, dtype=torch.float64)
    scale = torch.ones(n, dtype=torch.float64)
    shift = torch.zeros(n, 2, dtype=torch.float64)
    corners = torch.zeros(n, 4, 2, dtype=torch.float64)
    flow = None
    if variant == "R":
        angle = -90 + 180 * draws[:, 0]
    elif variant == "RTS":
        angle = -45 + 90 * draws[:, 0]
        scale = 0.7 + 0.5 * draws[:, 1]
        room = (OUTPUT_SIZE["RTS"] - _IN * scale) / 2  # (N,) the scaled box stays inside
        shift = (2 * draws[:, 2:4] - 1) * room[:, None]  # (N, 2)
    elif variant == "P":
        scale = 0.75 + 0.25 * draws[:, 0]
        corners = _CORNER_STD * normals.view(n, 4, 2)
    else:  # "E"
        assert noise is not None  # drawn above for "E"
        flow = _ELASTIC_ALPHA * _gaussian_smooth(2 * noise - 1, _ELASTIC_SIGMA)  # (N, 2, 28, 28)
    return Distortion(variant, angle.float(), scale.float(), shift.float(), corners.float(), flow)


def apply_distortion(images: Tensor, distortion: Distortion) -> Tensor:
    """Warp ``images`` by given parameters (use it to apply hand-made distortions in tests).

    Args:
        images: ``(N, 28, 28)`` uint8 (0..255) or float (0..1).
        distortion: ``N`` rows of parameters.

    Returns:
        ``(N, 1, S, S)`` float32 in [0, 1], ``S = distortion.size``.

    Raises:
        ValueError: wrong shape, or a parameter count different from ``N``.
    """
    x = _as_unit_float(images)
    n, size = x.shape[0], distortion.size
    if distortion.angle.shape[0] != n:
        raise ValueError(
            f"distortion has {distortion.angle.shape[0]} rows but images has shape {shape_str(images.shape)}"
        )
    theta = distortion.sampling_matrix()  # (N, 3, 3) output -> input, normalised
    identity = torch.eye(2, 3).expand(n, 2, 3)
    base = F.affine_grid(identity, [n, 1, size, size], align_corners=False).double()  # (N, S, S, 2)
    homog = torch.cat([base, torch.ones(n, size, size, 1, dtype=base.dtype)], dim=-1)  # (N, S, S, 3)
    mapped = homog @ theta.transpose(1, 2)[:, None]  # (N, S, S, 3)
    grid = (mapped[..., :2] / mapped[..., 2:]).float()  # (N, S, S, 2) input positions
    if distortion.flow is not None:
        grid = grid + distortion.flow.permute(0, 2, 3, 1) * (2 / _IN)  # pixels -> normalised units
    out = F.grid_sample(x[:, None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.clamp_(0.0, 1.0)  # (N, 1, S, S)


def _as_unit_float(images: Tensor) -> Tensor:
    check_tensor(images, "images")
    check_rank(images, "images", 3, "(N, 28, 28)")
    if tuple(images.shape[1:]) != (_IN, _IN):
        raise ValueError(f"images must have shape (N, 28, 28); got shape {shape_str(images.shape)}")
    if images.dtype == torch.uint8:
        return images.float() / 255.0
    if not torch.is_floating_point(images):
        raise ValueError(f"images must be uint8 (0..255) or float (0..1); got dtype {images.dtype}")
    return images.float()


def distort_mnist(
    images: Tensor,
    variant: str,
    seed: int,
    *,
    indices: Optional[Tensor | range] = None,
    return_params: bool = False,
) -> Tensor | tuple[Tensor, Distortion]:
    """Distort MNIST digits as in the Spatial Transformer paper.

    Args:
        images: ``(N, 28, 28)`` uint8 (0..255) or float (0..1).
        variant: ``"R"``, ``"RTS"``, ``"P"`` or ``"E"`` (see the module docstring).
        seed: the data set's seed.
        indices: ``(N,)`` example numbers (default ``0..N-1``); example ``i``'s distortion
            depends only on ``(seed, i)``.
        return_params: also return the sampled :class:`Distortion`.

    Returns:
        ``(N, 1, S, S)`` float32 in [0, 1] with ``S = 42`` for RTS and 28 otherwise, and
        the parameters when ``return_params``.

    Raises:
        ValueError: unknown variant, wrong image shape or dtype, or ``indices`` of another length.
    """
    variant = _check_variant(variant)
    x = _as_unit_float(images)
    n = x.shape[0]
    indices = range(n) if indices is None else indices
    if len(indices) != n:
        raise ValueError(f"indices must have one entry per image ({n}); got {len(indices)}")
    outputs, params = [], []
    for start in range(0, n, _CHUNK):
        chunk = sample_distortion(variant, seed, indices[start : start + _CHUNK])
        outputs.append(apply_distortion(x[start : start + _CHUNK], chunk))
        if return_params:
            params.append(chunk)
    out = torch.cat(outputs) if outputs else torch.zeros(0, 1, OUTPUT_SIZE[variant], OUTPUT_SIZE[variant])
    if not return_params:
        return out
    merged = (
        sample_distortion(variant, seed, [])
        if not params
        else Distortion(
            variant,
            torch.cat([p.angle for p in params]),
            torch.cat([p.scale for p in params]),
            torch.cat([p.shift for p in params]),
            torch.cat([p.corners for p in params]),
            None if params[0].flow is None else torch.cat([p.flow for p in params if p.flow is not None]),
        )
    )
    return out, merged


def load_distorted_mnist(
    variant: str, split: str = "train", *, seed: int = 0, limit: Optional[int] = None, download: bool = True
) -> tuple[Tensor, Tensor]:
    """A distorted-MNIST split, generated on the fly (nothing is stored on disk).

    Args:
        variant: ``"R"``, ``"RTS"``, ``"P"`` or ``"E"``.
        split: ``"train"`` (60000 images, examples 0..59999) or ``"test"`` (10000 images,
            examples 60000..69999).
        seed: the data set's seed.
        limit: keep only the first ``limit`` images of the split.
        download: passed to :func:`~attnlib.data.mnist.load_mnist`.

    Returns:
        ``(images, labels)``: ``(N, 1, S, S)`` float32 in [0, 1] and ``(N,)`` int64.

    Raises:
        ValueError: unknown variant or split, or a negative ``limit``.
    """
    variant = _check_variant(variant)
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0 or None; got {limit}")
    images, labels = load_mnist(split, download=download)
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    offset = _TEST_OFFSET if split == "test" else 0
    distorted = distort_mnist(images, variant, seed, indices=range(offset, offset + len(images)))
    assert isinstance(distorted, Tensor)  # without return_params, only the images come back
    return distorted, labels
