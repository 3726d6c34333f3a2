"""The parts of the Recurrent Attention Model: a retina-like sensor and five small networks.

Mnih, Heess, Graves and Kavukcuoglu, *Recurrent Models of Visual Attention*, NeurIPS 2014
(arXiv:1406.6247), section 4 ("Experiments", the design of each network):

* **Glimpse sensor** ``rho(x, l)``: ``k`` square patches centred on the location ``l``;
  the first is ``p x p`` pixels, each next one ``scale_factor`` times wider, and every
  patch is reduced to ``p x p`` (here by exact average pooling), so coarse context comes
  at the price of resolution.
* **Glimpse network** (the "what" and the "where" combined):
  ``h_g = ReLU(W_g rho + b)``, ``h_l = ReLU(W_l l + b)``, ``g = ReLU(W_1 h_g + W_2 h_l + b)``
  with 128, 128 and 256 units in the paper.
* **Core network**: ``h_t = ReLU(W_h h_{t-1} + W_x g_t + b)`` (256 rectifier units, the
  paper's classification model) or an LSTM (the paper's choice for its game).
* **Location network**: a Gaussian policy ``l ~ N(mu, sigma^2 I)`` with a *fixed* standard
  deviation; ``mu = tanh(W h)`` (the paper uses a linear layer and fixed variance; the tanh
  keeps the mean on the image).
* **Baseline network**: ``b_t = w^T h + c``, trained by regression on the reward.
* **Action network**: a linear softmax classifier, read after the last glimpse.

Coordinates: a location is ``(x, y)`` in ``[-1, 1]^2`` with ``-1`` the left (top) edge and
``+1`` the right (bottom) edge of the image, exactly the normalised coordinates of
:func:`torch.nn.functional.affine_grid` and ``grid_sample`` with ``align_corners=False``;
``(0, 0)`` is the centre.  Outside the image the sensor sees zeros.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnlib._checks import check_floating, check_rank, shape_str
from attnlib.record import emit

__all__ = [
    "GlimpseSensor",
    "GlimpseNetwork",
    "CoreNetwork",
    "LocationNetwork",
    "BaselineNetwork",
    "ActionNetwork",
]

CoreState = tuple[Tensor, Optional[Tensor]]


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
            out.append(torch.stack([cx - side / 2, cy - side / 2, torch.full_like(cx, side), torch.full_like(cy, side)], -1))
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
            patch = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)  # (B, C, side, side)
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

    def __init__(self, sensor: GlimpseSensor, channels: int = 1, what_size: int = 128, where_size: int = 128,
                 output_size: int = 256) -> None:
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


class CoreNetwork(nn.Module):
    """The recurrent state that integrates the glimpses.

    ``cell="rnn"``: ``h_t = ReLU(W_h h_{t-1} + W_x g_t + b)`` (the paper's classification
    model); ``cell="lstm"``: :class:`torch.nn.LSTMCell`.  The state is a pair ``(h, c)``;
    ``c`` is ``None`` for the plain RNN.

    Args:
        input_size: size of ``g`` (256 in the paper).
        hidden_size: size of ``h`` (256 in the paper).
        cell: ``"rnn"`` or ``"lstm"``.
    """

    def __init__(self, input_size: int = 256, hidden_size: int = 256, cell: str = "rnn") -> None:
        super().__init__()
        if cell not in ("rnn", "lstm"):
            raise ValueError(f"cell must be 'rnn' or 'lstm'; got {cell!r}")
        self.cell = cell
        self.hidden_size = hidden_size
        if cell == "rnn":
            self.input_to_hidden = nn.Linear(input_size, hidden_size)
            self.hidden_to_hidden = nn.Linear(hidden_size, hidden_size)
        else:
            self.lstm = nn.LSTMCell(input_size, hidden_size)

    def initial_state(self, batch_size: int, device: Optional[torch.device] = None,
                      dtype: Optional[torch.dtype] = None) -> CoreState:
        """Zeros: ``h`` of shape ``(B, hidden_size)`` and, for the LSTM, ``c`` of the same shape."""
        h = torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)
        return h, (torch.zeros_like(h) if self.cell == "lstm" else None)

    def forward(self, g: Tensor, state: CoreState) -> CoreState:
        """Args: g ``(B, input_size)``; state ``(h, c)`` with ``h`` ``(B, hidden_size)``.  Returns the new state."""
        h, c = state
        if self.cell == "rnn":
            return F.relu(self.input_to_hidden(g) + self.hidden_to_hidden(h)), None  # (B, hidden_size)
        h, c = self.lstm(g, (h, c))  # (B, hidden_size) each
        return h, c


class LocationNetwork(nn.Module):
    """The Gaussian location policy ``pi(l | h) = N(l; tanh(W h + b), std^2 I)``.

    The standard deviation is fixed, not learned (as in the paper).  The sample is drawn,
    its log-probability is computed *before* clamping (the log-density of the action the
    Gaussian produced), and then it is clamped to ``[-1, 1]`` (the sensor looks no further
    than the edge) and **detached**: no gradient flows from the glimpse back into the
    mean, so the policy learns only from the REINFORCE term.

    Each call emits the location it returns, ``(B, 2)``, through :func:`attnlib.record.emit`.

    Args:
        hidden_size: size of the core state ``h``.
        std: the policy's fixed standard deviation, in the normalised units where the image
            is 2 wide.
    """

    def __init__(self, hidden_size: int = 256, std: float = 0.15) -> None:
        super().__init__()
        if std <= 0:
            raise ValueError(f"std must be > 0; got {std}")
        self.std = std
        self.mean = nn.Linear(hidden_size, 2)

    def forward(self, h: Tensor, sample: bool = True, given: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
        """Choose the next location.

        Args:
            h: ``(B, hidden_size)``.
            sample: draw from the policy; ``False`` returns the mean (a deterministic policy).
            given: ``(B, 2)``: use these locations instead (e.g. random glimpses for a
                comparison); their log-probability under the policy is returned.

        Returns:
            ``(location, log_prob)``: location ``(B, 2)`` in ``[-1, 1]``, detached;
            log_prob ``(B,)``, ``log pi(l | h)`` summed over ``x`` and ``y``, differentiable
            with respect to the mean.
        """
        check_rank(h, "h", 2, "(B, hidden_size)")
        mu = torch.tanh(self.mean(h))  # (B, 2)
        if given is not None:
            if given.shape != mu.shape:
                raise ValueError(f"given must have shape (B, 2) = {shape_str(mu.shape)}; got {shape_str(given.shape)}")
            raw = given.to(mu.dtype).detach()  # (B, 2)
        else:
            raw = (mu + self.std * torch.randn_like(mu)).detach() if sample else mu.detach()  # (B, 2)
        log_prob = torch.distributions.Normal(mu, self.std).log_prob(raw).sum(-1)  # (B,)
        location = raw.clamp(-1.0, 1.0)  # (B, 2)
        emit(self, location)
        return location, log_prob


class BaselineNetwork(nn.Module):
    """``b = w^T h + c``: the expected reward, a variance-reducing baseline for REINFORCE.

    Args:
        hidden_size: size of the core state ``h``.
    """

    def __init__(self, hidden_size: int = 256) -> None:
        super().__init__()
        self.linear = nn.Linear(hidden_size, 1)

    def forward(self, h: Tensor) -> Tensor:
        """Args: h ``(B, hidden_size)``.  Returns: ``(B,)``."""
        return self.linear(h)[:, 0]  # (B,)


class ActionNetwork(nn.Module):
    """A linear softmax classifier on the core state.

    Args:
        hidden_size: size of the core state ``h``.
        num_classes: number of classes ``K``.
    """

    def __init__(self, hidden_size: int = 256, num_classes: int = 10) -> None:
        super().__init__()
        self.linear = nn.Linear(hidden_size, num_classes)

    def forward(self, h: Tensor) -> Tensor:
        """Args: h ``(B, hidden_size)``.  Returns: log-probabilities ``(B, K)``."""
        return F.log_softmax(self.linear(h), dim=-1)  # (B, K)
