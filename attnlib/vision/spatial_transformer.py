"""Spatial Transformer: a network that decides where to look and resamples the input there.

Jaderberg, Simonyan, Zisserman & Kavukcuoglu, "Spatial Transformer Networks", NeurIPS 2015
(arXiv:1506.02025).  A spatial transformer has three parts (section 3 of the paper):

1. a **localisation network** ``f_loc`` regresses the parameters of a transformation from
   the input feature map ``U``: here the six entries of an affine matrix
   ``theta = f_loc(U)``, shape ``(B, 2, 3)``;
2. a **grid generator** maps every output pixel ``(x_t, y_t)`` (coordinates normalised to
   [-1, 1]) to the source position it reads, ``(x_s, y_s) = theta @ (x_t, y_t, 1)``
   (eq. 1 of the paper): :func:`torch.nn.functional.affine_grid`;
3. a **sampler** reads ``U`` at those positions with bilinear interpolation (eq. 5),
   which is differentiable in both ``U`` and the positions, so the loss trains ``f_loc``
   without any supervision of the transformation: :func:`torch.nn.functional.grid_sample`.

The localisation network's last layer starts at zero weights and an identity bias, so an
untrained transformer passes its input through unchanged and sees the whole input, where
the gradient with respect to ``theta`` is informative (a window on empty background gets
none).  The module emits ``theta`` ``(B, 2, 3)`` through
:func:`attnlib.record.emit`; :func:`output_box` turns it into the outline of the region
that was sampled, for drawing on the input.

Conventions: ``align_corners=False`` everywhere (a normalised coordinate of -1 is the
outer edge of the first pixel), zeros outside the input.  Not implemented: the
thin-plate-spline and projective transformations of the paper (section 4.1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnlib._checks import check_floating, check_rank, shape_str
from attnlib.record import emit

__all__ = ["affine_transform", "output_box", "SpatialTransformer", "STCNNConfig", "STCNN"]

Size = Union[int, Sequence[int]]


def _pair(size: Size, name: str) -> tuple[int, int]:
    values = [int(size), int(size)] if isinstance(size, int) else [int(s) for s in size]
    if len(values) != 2 or min(values) < 1:
        raise ValueError(f"{name} must be a positive int or (H, W); got {size!r}")
    return values[0], values[1]


def affine_transform(x: Tensor, theta: Tensor, output_size: Optional[Size] = None) -> Tensor:
    """Sample ``x`` on the grid that ``theta`` maps the output onto (grid generator + sampler).

    Args:
        x: ``(B, C, H, W)`` input.
        theta: ``(B, 2, 3)`` affine maps from output to input coordinates, both normalised
            to [-1, 1] (``x`` to the right, ``y`` down).  The identity
            ``[[1, 0, 0], [0, 1, 0]]`` returns ``x`` itself when the sizes agree.
        output_size: ``(H', W')`` or an int; defaults to ``(H, W)``.

    Returns:
        ``(B, C, H', W')``, bilinear samples, zero outside the input.

    Raises:
        ValueError: wrong ranks or shapes, or non-float input.
    """
    check_rank(x, "x", 4, "(B, C, H, W)")
    check_floating(x, "x")
    check_rank(theta, "theta", 3, "(B, 2, 3)")
    if tuple(theta.shape) != (x.shape[0], 2, 3):
        raise ValueError(
            f"theta must have shape (B, 2, 3) = {shape_str((x.shape[0], 2, 3))}; got {shape_str(theta.shape)}"
        )
    B, C, H, W = x.shape
    out_h, out_w = (H, W) if output_size is None else _pair(output_size, "output_size")
    grid = F.affine_grid(theta.to(x.dtype), [B, C, out_h, out_w], align_corners=False)  # (B, H', W', 2)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)  # (B, C, H', W')


def output_box(theta: Tensor, input_size: Size) -> Tensor:
    """Outline, in input pixel coordinates, of the region an affine transformer samples.

    Args:
        theta: ``(B, 2, 3)`` as in :func:`affine_transform`.
        input_size: ``(H, W)`` of the input.

    Returns:
        ``(B, 5, 2)`` points ``(x, y)`` (column, row; pixel centres at integers, as
        :func:`matplotlib.pyplot.imshow` draws them): the output's corners top-left,
        top-right, bottom-right, bottom-left and top-left again, ready for ``ax.plot``.
    """
    check_rank(theta, "theta", 3, "(B, 2, 3)")
    H, W = _pair(input_size, "input_size")
    corners = torch.tensor(
        [[-1.0, -1.0, 1.0], [1.0, -1.0, 1.0], [1.0, 1.0, 1.0], [-1.0, 1.0, 1.0], [-1.0, -1.0, 1.0]],
        dtype=theta.dtype,
        device=theta.device,
    )  # (5, 3) homogeneous output corners
    source = corners @ theta.transpose(1, 2)  # (B, 5, 2) normalised input positions
    scale = torch.tensor([W / 2, H / 2], dtype=theta.dtype, device=theta.device)
    return (source + 1) * scale - 0.5  # (B, 5, 2) pixel coordinates


class SpatialTransformer(nn.Module):
    """An affine spatial transformer: localisation network, grid generator and sampler.

    Args:
        in_channels: ``C`` of the input.
        input_size: ``(H, W)`` (or an int) of the input; fixes the size of the
            localisation network's fully connected layer.
        output_size: ``(H', W')`` of the output; defaults to ``input_size``.  A smaller
            output than input makes the transformer a zooming attention window.
        channels: filters of the localisation network's convolutions (5 x 5, each followed
            by 2 x 2 max pooling and a ReLU).
        hidden: units of its fully connected hidden layer.
        pool: the localisation network first max-pools its input by this factor (a
            cheaper look at a large input; 1 = no pooling).
        localisation: replace the default convolutional localisation network by any module
            mapping ``(B, C, H, W)`` to ``(B, F)`` features (the final ``F -> 6`` layer is
            still added, identity-initialised).

    Shapes:
        input ``(B, C, H, W)`` -> output ``(B, C, H', W')``; ``theta`` ``(B, 2, 3)``
        (:meth:`theta` computes it).  Emits ``theta`` to :mod:`attnlib.record` on every call.

    Raises:
        ValueError: if ``in_channels`` is below 1 or a size is not a positive int or pair; on a
            call, if ``x`` is not 4-D or its shape is not ``(B, in_channels, *input_size)``.
    """

    def __init__(
        self,
        in_channels: int,
        input_size: Size,
        *,
        output_size: Optional[Size] = None,
        channels: Sequence[int] = (20, 20),
        hidden: int = 50,
        pool: int = 1,
        localisation: Optional[nn.Module] = None,
    ) -> None:
        super().__init__()
        if in_channels < 1:
            raise ValueError(f"in_channels must be >= 1; got {in_channels}")
        self.in_channels = in_channels
        self.input_size = _pair(input_size, "input_size")
        self.output_size = self.input_size if output_size is None else _pair(output_size, "output_size")
        if localisation is None:
            layers: list[nn.Module] = [nn.MaxPool2d(pool, ceil_mode=True)] if pool > 1 else []
            previous = in_channels
            for width in channels:
                layers += [nn.Conv2d(previous, width, 5, padding=2), nn.MaxPool2d(2, ceil_mode=True), nn.ReLU()]
                previous = width
            layers += [nn.Flatten()]
            with torch.no_grad():
                features = nn.Sequential(*layers)(torch.zeros(1, in_channels, *self.input_size)).shape[1]
            layers += [nn.Linear(features, hidden), nn.ReLU()]
            localisation, features = nn.Sequential(*layers), hidden
        else:
            with torch.no_grad():
                features = localisation(torch.zeros(1, in_channels, *self.input_size)).shape[1]
        self.localisation = localisation
        self.regressor = nn.Linear(features, 6)
        nn.init.zeros_(self.regressor.weight)  # start at the identity transform
        with torch.no_grad():
            self.regressor.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]))

    def theta(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, 2, 3): the affine parameters for ``x``."""
        self._check(x)
        return self.regressor(self.localisation(x)).view(-1, 2, 3)  # (B, 2, 3)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, C, H', W'): ``x`` resampled where the localisation network looks."""
        theta = self.theta(x)  # (B, 2, 3)
        emit(self, theta)
        return affine_transform(x, theta, self.output_size)  # (B, C, H', W')

    def _check(self, x: Tensor) -> None:
        check_rank(x, "x", 4, "(B, C, H, W)")
        expected = (self.in_channels, *self.input_size)
        if tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"x must have shape (B, C, H, W) = (B, {expected[0]}, {expected[1]}, {expected[2]}); "
                f"got {shape_str(x.shape)}"
            )


@dataclass(frozen=True)
class STCNNConfig:
    """A CNN classifier, with or without a spatial transformer at its input (the paper's
    CNN / ST-CNN comparison, section 4.1).  Layer sizes are ours; like the paper's CNN (as we
    read section 4.1) it has two max-pooled convolutional layers."""

    input_size: int = 28  # 42 for the RTS variant
    in_channels: int = 1  # grey digits
    num_classes: int = 10  # digits 0-9
    use_transformer: bool = True  # False: the plain CNN baseline
    transformer_output: Optional[int] = None  # None: same as the input; RTS may zoom 42 -> 28
    loc_channels: tuple[int, ...] = (20, 20)  # localisation: two 5x5 conv layers of 20 filters
    loc_hidden: int = 50  # then 50 hidden units, then the 6 affine parameters
    loc_pool: int = 1  # max-pool the localisation network's input by this factor (1: none)
    channels: tuple[int, int] = (32, 64)  # classifier: two 5x5 conv layers, each max-pooled
    hidden_size: int = 128  # fully connected layer before the 10-way output


class STCNN(nn.Module):
    """CNN classifier with an optional affine spatial transformer in front (ST-CNN).

    Shapes:
        input ``(B, C, S, S)`` -> logits ``(B, num_classes)``.  The transformer (``.transformer``,
        or ``None``) emits its ``theta`` ``(B, 2, 3)``.

    Args:
        config: the architecture; default :class:`STCNNConfig`.

    Raises:
        ValueError: on a call, if ``x`` is not 4-D (or, with a transformer, not of shape
            ``(B, in_channels, input_size, input_size)``).
    """

    def __init__(self, config: STCNNConfig = STCNNConfig()) -> None:
        super().__init__()
        self.config = config
        size = config.input_size
        self.transformer: Optional[SpatialTransformer] = None
        if config.use_transformer:
            out = config.transformer_output or size
            self.transformer = SpatialTransformer(
                config.in_channels,
                size,
                output_size=out,
                channels=config.loc_channels,
                hidden=config.loc_hidden,
                pool=config.loc_pool,
            )
            size = out
        c1, c2 = config.channels
        self.features = nn.Sequential(
            nn.Conv2d(config.in_channels, c1, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2, ceil_mode=True),
            nn.Conv2d(c1, c2, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2, ceil_mode=True),
            nn.Flatten(),
        )
        with torch.no_grad():
            features = self.features(torch.zeros(1, config.in_channels, size, size)).shape[1]
        self.head = nn.Sequential(
            nn.Linear(features, config.hidden_size), nn.ReLU(), nn.Linear(config.hidden_size, config.num_classes)
        )

    def rectify(self, x: Tensor) -> Tensor:
        """(B, C, S, S) -> (B, C, S', S'): what the classifier sees, the transformer's output (or ``x``)."""
        check_rank(x, "x", 4, "(B, C, H, W)")
        return x if self.transformer is None else self.transformer(x)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, S, S) -> (B, classes): class logits."""
        return self.head(self.features(self.rectify(x)))  # (B, classes)
