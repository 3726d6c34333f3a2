"""The RAM's "what": a retina-like glimpse sensor and the glimpse network around it.

Mnih, Heess, Graves and Kavukcuoglu, *Recurrent Models of Visual Attention*, NeurIPS 2014
(arXiv:1406.6247), section 4.

* **Glimpse sensor** ``rho(x, l)``: ``k`` square patches centred on the location ``l``;
  the first is ``p x p`` pixels, each next one ``scale_factor`` times wider, and every
  patch is reduced to ``p x p`` (here by exact average pooling), so coarse context comes
  at the price of resolution.
* **Glimpse network** (the "what" and the "where" combined):
  ``h_g = ReLU(W_g rho + b)``, ``h_l = ReLU(W_l l + b)``, ``g = ReLU(W_1 h_g + W_2 h_l + b)``
  with 128, 128 and 256 units in the paper.

Coordinates: a location is ``(x, y)`` in ``[-1, 1]^2`` with ``-1`` the left (top) edge and
``+1`` the right (bottom) edge of the image, exactly the normalised coordinates of
:func:`torch.nn.functional.affine_grid` and ``grid_sample`` with ``align_corners=False``;
``(0, 0)`` is the centre.  Outside the image the sensor sees zeros.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnlib._checks import check_floating, check_rank, shape_str
from attnlib.record import emit

__all__ = ["GlimpseSensor", "GlimpseNetwork"]


def _check_locations(images: Tensor, locations: Tensor) -> None:
    check_rank(locations, "locations", 2, "(B, 2) as (x, y)")
    if locations.shape != (images.shape[0], 2):
        raise ValueError(
            f"locations must have shape (B, 2) = {shape_str((images.shape[0], 2))} for images of shape "
            f"{shape_str(images.shape)}; got {shape_str(locations.shape)}"
        )


class GlimpseSensor(nn.Module):
    """The retina ``rho(x, l)``: ``num_scales`` concentric patches, each reduced to ``p x p``.

    Patch ``s`` (``s = 0 .. num_scales - 1``) covers ``p * scale_factor**s`` pixels on a side,
    centred on the location; it is sampled at full resolution with ``grid_sample`` (bilinear,
    zeros outside the image) and then average-pooled by ``scale_factor**s``.  A location that
    puts the patch on whole pixels returns exact crops and exact block averages.

    Each call emits its patches through :func:`attnlib.record.emit`: ``(B, S, C, p, p)``.

    Args:
        patch_size: ``p``, the side of every returned patch (8 on 28x28 MNIST, 12 on 60x60).
        num_scales: ``S``, the number of patches (1 on 28x28 MNIST, 3 on 60x60).
        scale_factor: how much wider each patch is than the previous one (2 in the paper).
    """

    def __init__(self, patch_size: int = 8, num_scales: int = 1, scale_factor: int = 2) -> None:
        super().__init__()
        if patch_size < 1 or num_scales < 1 or scale_factor < 1:
            raise ValueError(
                f"patch_size, num_scales and scale_factor must be >= 1; got {patch_size}, {num_scales}, {scale_factor}"
            )
        self.patch_size = patch_size
        self.num_scales = num_scales
        self.scale_factor = scale_factor

    def sides(self) -> list[int]:
        """Side in pixels of each patch in the image, smallest first."""
        return [self.patch_size * self.scale_factor**s for s in range(self.num_scales)]

    def boxes(self, locations: Tensor, height: int, width: int) -> Tensor:
        """Where each patch lies in the image, in pixels, for drawing.

        Args:
            locations: ``(..., 2)`` as ``(x, y)`` in ``[-1, 1]``.
            height, width: the image size.

        Returns:
            ``(..., S, 4)``: ``(left, top, side, side)`` of every patch, in pixel units where
            pixel ``i`` spans ``[i, i + 1)``.
        """
        cx = (locations[..., 0] + 1) * width / 2  # (...,) centre in pixels
        cy = (locations[..., 1] + 1) * height / 2  # (...,)
        out = []
        for side in self.sides():
            out.append(
                torch.stack([cx - side / 2, cy - side / 2, torch.full_like(cx, side), torch.full_like(cy, side)], -1)
            )
        return torch.stack(out, dim=-2)  # (..., S, 4)

    def forward(self, images: Tensor, locations: Tensor) -> Tensor:
        """Extract the glimpse.

        Args:
            images: ``(B, C, H, W)``, floating point.
            locations: ``(B, 2)`` as ``(x, y)`` in ``[-1, 1]`` (values outside look beyond
                the edge and see zeros).

        Returns:
            ``(B, S, C, p, p)``: patch ``s`` covers ``p * scale_factor**s`` pixels.

        Raises:
            ValueError: if ``images`` is not ``(B, C, H, W)`` floating point or ``locations``
                is not ``(B, 2)``.
        """
        check_rank(images, "images", 4, "(B, C, H, W)")
        check_floating(images, "images")
        _check_locations(images, locations)
        B, C, H, W = images.shape
        p = self.patch_size
        locations = locations.to(images.dtype)
        patches = []
        for side in self.sides():
            theta = images.new_zeros(B, 2, 3)  # (B, 2, 3): maps the patch's [-1, 1] into the image
            theta[:, 0, 0] = side / W
            theta[:, 1, 1] = side / H
            theta[:, :, 2] = locations
            grid = F.affine_grid(theta, [B, C, side, side], align_corners=False)  # (B, side, side, 2)
            patch = F.grid_sample(
                images, grid, mode="bilinear", padding_mode="zeros", align_corners=False
            )  # (B, C, side, side)
            if side != p:
                patch = F.avg_pool2d(patch, kernel_size=side // p)  # (B, C, p, p)
            patches.append(patch)
        glimpse = torch.stack(patches, dim=1)  # (B, S, C, p, p)
        emit(self, glimpse)
        return glimpse


class GlimpseNetwork(nn.Module):
    """``g = ReLU(W_1 ReLU(W_g rho) + W_2 ReLU(W_l l))``: what was seen, and where.

    Args:
        sensor: the :class:`GlimpseSensor`.
        channels: ``C`` of the images.
        what_size: units of ``h_g`` (128 in the paper).
        where_size: units of ``h_l`` (128 in the paper).
        output_size: units of ``g`` (256 in the paper).
    """

    def __init__(
        self,
        sensor: GlimpseSensor,
        channels: int = 1,
        what_size: int = 128,
        where_size: int = 128,
        output_size: int = 256,
    ) -> None:
        super().__init__()
        self.sensor = sensor
        glimpse_numel = sensor.num_scales * channels * sensor.patch_size**2
        self.what = nn.Linear(glimpse_numel, what_size)
        self.where = nn.Linear(2, where_size)
        self.what_out = nn.Linear(what_size, output_size)
        self.where_out = nn.Linear(where_size, output_size)

    def forward(self, images: Tensor, locations: Tensor) -> Tensor:
        """Args: images ``(B, C, H, W)``; locations ``(B, 2)``.  Returns: ``g`` of shape ``(B, output_size)``."""
        glimpse = self.sensor(images, locations).flatten(1)  # (B, S * C * p * p)
        h_g = F.relu(self.what(glimpse))  # (B, what_size)
        h_l = F.relu(self.where(locations))  # (B, where_size)
        return F.relu(self.what_out(h_g) + self.where_out(h_l))  # (B, output_size)
