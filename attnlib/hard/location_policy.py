"""The RAM's "where": a Gaussian location policy, the one network REINFORCE trains.

Mnih, Heess, Graves and Kavukcuoglu, *Recurrent Models of Visual Attention*, NeurIPS 2014
(arXiv:1406.6247), section 4.  ``l ~ N(mu, sigma^2 I)`` with a *fixed* standard deviation; ``mu = tanh(W h)``
(the paper uses a linear layer and fixed variance; the tanh keeps the mean on the image).

Coordinates: a location is ``(x, y)`` in ``[-1, 1]^2`` with ``-1`` the left (top) edge and
``+1`` the right (bottom) edge of the image, exactly the normalised coordinates of
:func:`torch.nn.functional.affine_grid` and ``grid_sample`` with ``align_corners=False``;
``(0, 0)`` is the centre.  Outside the image the sensor sees zeros.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from attnlib._checks import check_rank, shape_str
from attnlib.record import emit

__all__ = ["LocationNetwork"]


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
