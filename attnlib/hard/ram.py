"""The Recurrent Attention Model (RAM): classify an image from a few glimpses it chooses.

Mnih, Heess, Graves and Kavukcuoglu, *Recurrent Models of Visual Attention*, NeurIPS 2014
(arXiv:1406.6247).  Starting from an empty state ``h_0 = 0``, for ``t = 1 .. T``:

    l_{t-1} ~ pi(. | h_{t-1}) = N(tanh(W_l h_{t-1}), std^2 I)     (location network)
    g_t     = f_g(x, l_{t-1})                                       (glimpse network)
    h_t     = f_h(h_{t-1}, g_t)                                     (core network)
    b_t     = f_b(h_{t-1})                                          (baseline, detached input)

and the class is read from ``f_a(h_T)`` (action network).  The first location is chosen by
the policy too, from ``h_0``: a learned starting point plus exploration noise.
Training uses :func:`attnlib.hard.reinforce.hybrid_loss`.

Where we follow the paper and where we choose (the paper leaves these open):

* sizes 128 / 128 -> 256 for the glimpse network and 256 core units, a rectifier RNN core,
  reward 1 for a correct final classification, a learned baseline: as in the paper;
* what is detached: the sampled location (always), the baseline's input ``h`` (so its
  regression does not shape the representation), and by default the policy's input ``h``
  (so the noisy REINFORCE gradient trains only the location network; set
  ``RAMConfig.reinforce_trains_core=True`` to let it reach the core and glimpse networks);
* the location standard deviation (the paper gives none; 0.15 to 0.25 in the normalised
  units where the image is 2 wide works for the tasks here).

Recording: ``with attnlib.record_attention(model) as maps`` collects ``"glimpse.sensor"``
(``T`` tensors ``(B, S, C, p, p)``, the patches seen) and ``"location"`` (``T`` tensors
``(B, 2)``, the locations used), one entry per glimpse.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Optional

import torch
from torch import Tensor, nn

from attnlib._checks import check_floating, check_rank, shape_str
from attnlib.hard.core_network import CoreNetwork
from attnlib.hard.glimpse import GlimpseNetwork, GlimpseSensor
from attnlib.hard.heads import ActionNetwork, BaselineNetwork
from attnlib.hard.location_policy import LocationNetwork

__all__ = ["RAMConfig", "RAMOutput", "RecurrentAttentionModel"]


@dataclass(frozen=True)
class RAMConfig:
    """Hyperparameters of :class:`RecurrentAttentionModel` (defaults: the 28x28 MNIST model)."""

    in_channels: int = 1  # greyscale MNIST
    num_classes: int = 10  # digits
    patch_size: int = 8  # 8x8 glimpses on 28x28 MNIST (12x12 on 60x60) in the paper
    num_scales: int = 1  # 1 scale on 28x28 MNIST, 3 on 60x60 in the paper
    scale_factor: int = 2  # each patch twice as wide as the previous one, as in the paper
    num_glimpses: int = 6  # the paper's 28x28 MNIST entry quoted most often (Table 1)
    what_size: int = 128  # h_g, paper
    where_size: int = 128  # h_l, paper
    glimpse_size: int = 256  # g, paper
    hidden_size: int = 256  # core units, paper
    core: str = "rnn"  # rectifier RNN for classification in the paper ("lstm" also available)
    location_std: float = 0.15  # fixed policy std; not given in the paper, chosen by trial here
    reinforce_trains_core: bool = False  # False: REINFORCE trains only the location network


class RAMOutput(NamedTuple):
    """What :meth:`RecurrentAttentionModel.forward` returns."""

    log_probs: Tensor  #: ``(B, K)`` class log-probabilities after the last glimpse
    locations: Tensor  #: ``(B, T, 2)`` the glimpse locations ``(x, y)`` in ``[-1, 1]``
    location_log_probs: Tensor  #: ``(B, T)`` ``log pi(l_t | h_{t-1})``
    baselines: Tensor  #: ``(B, T)`` the baseline's reward prediction when ``l_t`` was chosen


class RecurrentAttentionModel(nn.Module):
    """RAM: glimpse network, core network, location, baseline and action networks.

    Args:
        config: a :class:`RAMConfig`.
    """

    def __init__(self, config: RAMConfig = RAMConfig()) -> None:
        super().__init__()
        self.config = config
        sensor = GlimpseSensor(config.patch_size, config.num_scales, config.scale_factor)
        self.glimpse = GlimpseNetwork(
            sensor, config.in_channels, config.what_size, config.where_size, config.glimpse_size
        )
        self.core = CoreNetwork(config.glimpse_size, config.hidden_size, config.core)
        self.location = LocationNetwork(config.hidden_size, config.location_std)
        self.baseline = BaselineNetwork(config.hidden_size)
        self.action = ActionNetwork(config.hidden_size, config.num_classes)

    def forward(
        self,
        images: Tensor,
        num_glimpses: Optional[int] = None,
        sample: Optional[bool] = None,
        locations: Optional[Tensor] = None,
    ) -> RAMOutput:
        """Take ``T`` glimpses and classify.

        Args:
            images: ``(B, C, H, W)``.
            num_glimpses: ``T`` (default ``config.num_glimpses``, or ``locations.shape[1]``);
                fewer reads the classifier early.
            sample: draw locations from the policy (default: in training mode only);
                ``False`` follows the policy's mean.
            locations: ``(B, T, 2)``: look there instead of where the policy says (e.g.
                random glimpses, for comparison).

        Returns:
            A :class:`RAMOutput`.

        Raises:
            ValueError: if ``images`` is not ``(B, C, H, W)`` floating point with
                ``config.in_channels`` channels, or ``num_glimpses < 1``.
        """
        check_rank(images, "images", 4, "(B, C, H, W)")
        check_floating(images, "images")
        if images.shape[1] != self.config.in_channels:
            raise ValueError(
                f"images must have {self.config.in_channels} channel(s) (B, C, H, W); "
                f"got shape {shape_str(images.shape)}"
            )
        if locations is not None:
            check_rank(locations, "locations", 3, "(B, T, 2)")
            if num_glimpses is None:
                num_glimpses = locations.shape[1]
            if locations.shape[0] != images.shape[0] or locations.shape[1] < num_glimpses or locations.shape[2] != 2:
                raise ValueError(
                    f"locations must have shape (B, T, 2) with B = {images.shape[0]} and T >= {num_glimpses}; "
                    f"got {shape_str(locations.shape)}"
                )
        T = self.config.num_glimpses if num_glimpses is None else num_glimpses
        if T < 1:
            raise ValueError(f"num_glimpses must be >= 1; got {T}")
        sample = self.training if sample is None else sample
        B = images.shape[0]
        state = self.core.initial_state(B, images.device, images.dtype)  # h: (B, hidden)
        path, log_pis, baselines = [], [], []
        for t in range(T):
            h = state[0]  # (B, hidden)
            policy_input = h if self.config.reinforce_trains_core else h.detach()
            given = None if locations is None else locations[:, t]  # (B, 2)
            location, log_pi = self.location(policy_input, sample=sample, given=given)  # (B, 2) detached, (B,)
            baselines.append(self.baseline(h.detach()))  # (B,)
            state = self.core(self.glimpse(images, location), state)  # h: (B, hidden)
            path.append(location)
            log_pis.append(log_pi)
        return RAMOutput(
            self.action(state[0]),  # (B, K)
            torch.stack(path, dim=1),  # (B, T, 2)
            torch.stack(log_pis, dim=1),  # (B, T)
            torch.stack(baselines, dim=1),  # (B, T)
        )

    @torch.no_grad()
    def predict(self, images: Tensor, num_samples: int = 0, num_glimpses: Optional[int] = None) -> Tensor:
        """Class log-probabilities for evaluation.

        Args:
            images: ``(B, C, H, W)``.
            num_samples: ``0`` follows the policy's mean (deterministic); ``M >= 1`` samples
                ``M`` glimpse paths and averages their class probabilities (Monte Carlo).
            num_glimpses: ``T`` (default ``config.num_glimpses``).

        Returns:
            ``(B, K)`` log-probabilities.
        """
        if num_samples <= 0:
            return self.forward(images, num_glimpses, sample=False).log_probs
        probs = torch.stack(
            [self.forward(images, num_glimpses, sample=True).log_probs.exp() for _ in range(num_samples)]
        )  # (M, B, K)
        return probs.mean(0).log()  # (B, K)
