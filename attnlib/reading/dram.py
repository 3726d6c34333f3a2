"""The Deep Recurrent Attention Model (DRAM) of Ba, Mnih & Kavukcuoglu (2015), "Multiple
object recognition with visual attention", ICLR, arXiv:1412.7755 (§3), on the glimpse
machinery of :mod:`attnlib.hard` (the RAM of Mnih et al., 2014, arXiv:1406.6247).

DRAM reads a sequence of ``S`` objects, ``N`` glimpses per object, and emits one label per
object, then an end symbol.  Its parts (the paper's names)::

    context:   r2_0 = tanh(W_c conv(downsample(x)))        the first location from a coarse view
    emission:  l_(n+1) ~ N(tanh(W_e r2_n), std^2)           (LocationNetwork of attnlib.hard)
    glimpse:   g_n = ReLU(W_what rho(x, l_n)) * ReLU(W_where l_n)      "what" times "where"
    core:      r1_n = LSTM(g_n, r1_(n-1)),   r2_n = LSTM(r1_n, r2_(n-1))      two layers
    classify:  p(y_s) = softmax(W_a r1) after the N glimpses of object s  (ActionNetwork)

The lower layer ``r1`` classifies, the upper layer ``r2`` emits locations; the paper's
point is that the two tasks are kept in separate layers, and that the context network lets
the first glimpse depend on the image (RAM's first location is the same for every image).

Training: the hybrid loss of :func:`attnlib.hard.reinforce.hybrid_loss`, summed over the ``S + 1``
labels: label ``s`` is classified by cross-entropy, and its reward (1 when right) credits
every location chosen up to it, with a learned baseline ``b_n = f_b(r2_n)``.  Our choices
(documented, not the paper's): ``r1`` enters the upper layer detached and the baseline
reads ``r2`` detached, so that the REINFORCE term trains only the location policy (context,
upper core, emission) and the cross-entropy only the glimpse network, lower core and
classifier; the paper trains everything jointly.  Each location is emitted to
:mod:`attnlib.record` by the :class:`~attnlib.hard.location_policy.LocationNetwork` (``(B, 2)`` per glimpse).

Controls for the learned policy (ours, not the paper's): :func:`train_dram` can train the same
model on paths it does not choose, ``glimpses="random"`` (uniform glimpses, drawn afresh for every
scene) or ``glimpses="scan"`` (:func:`scan_path`, a fixed left-to-right scan of the ``S`` strips
where the objects of the scenes of :func:`attnlib.data.digit_strips.digit_pair_scenes` lie), and
:func:`dram_scores` tests each on the kind of path it was trained on.  :func:`path_scores` measures
where a path looks: the share of glimpse centres on an object, and whether each object's glimpses
land on that object, in reading order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple, Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_feature_map, check_rank, shape_str
from ..hard import ActionNetwork, BaselineNetwork, CoreNetwork, GlimpseSensor, HybridLoss, LocationNetwork, hybrid_loss
from ..train import History, fit, minibatches

__all__ = [
    "DRAMConfig",
    "DRAMOutput",
    "WhatWhereGlimpse",
    "ContextNetwork",
    "DeepRecurrentAttentionModel",
    "DRAM",
    "GLIMPSE_POLICIES",
    "scan_path",
    "random_paths",
    "train_dram",
    "visits",
    "path_scores",
    "dram_scores",
]

GLIMPSE_POLICIES = ("learned", "random", "scan")  #: where :func:`train_dram` and :func:`dram_scores` look


@dataclass(frozen=True)
class DRAMConfig:
    """Sizes of a :class:`DeepRecurrentAttentionModel` (small, for a CPU; the paper's are larger).

    Attributes:
        image_size: side of the square input; ``in_channels``: its channels.
        num_objects: ``S``, labels per image (an end symbol follows them).
        num_classes: ``K`` object classes; the end symbol is class ``K``.
        glimpses_per_object: ``N``.
        patch_size, num_scales: of the :class:`~attnlib.hard.glimpse.GlimpseSensor`.
        hidden_size: of both core layers and the glimpse vector.
        context_size: side of the downsampled image the context network sees.
        location_std: the emission policy's fixed standard deviation.
        use_context: ``False`` starts ``r2`` at zero, as RAM does (the first location is then
            the same for every image).
    """

    image_size: int = 56
    in_channels: int = 1
    num_objects: int = 2
    num_classes: int = 10
    glimpses_per_object: int = 2
    patch_size: int = 14
    num_scales: int = 2
    hidden_size: int = 64
    context_size: int = 14
    location_std: float = 0.15
    use_context: bool = True


class DRAMOutput(NamedTuple):
    """What one pass of DRAM returns (``S + 1`` labels, ``(S + 1) N`` glimpses)."""

    log_probs: Tensor  #: ``(B, S + 1, K + 1)`` label log-probabilities, the last one for the end symbol
    locations: Tensor  #: ``(B, (S + 1) N, 2)`` glimpse centres in ``[-1, 1]`` (x, y)
    location_log_probs: Tensor  #: ``(B, (S + 1) N)`` log-probabilities of the sampled locations
    baselines: Tensor  #: ``(B, (S + 1) N)`` the baseline's reward predictions


class WhatWhereGlimpse(nn.Module):
    """``g = ReLU(W_what rho(x, l)) * ReLU(W_where l)``: the product of what was seen and where
    (Ba et al. §3.1; RAM's glimpse network adds the two instead).

    ``images`` ``(B, C, H, W)``, ``locations`` ``(B, 2)`` -> ``g`` ``(B, hidden_size)``.
    """

    def __init__(self, sensor: GlimpseSensor, channels: int, hidden_size: int) -> None:
        super().__init__()
        self.sensor = sensor
        self.what = nn.Linear(sensor.num_scales * channels * sensor.patch_size**2, hidden_size)
        self.where = nn.Linear(2, hidden_size)

    def forward(self, images: Tensor, locations: Tensor) -> Tensor:
        patches = self.sensor(images, locations).flatten(1)  # (B, scales C p p)
        return F.relu(self.what(patches)) * F.relu(self.where(locations))  # (B, hidden): what x where


class ContextNetwork(nn.Module):
    """A coarse view of the whole image to the upper core's first state: ``(B, C, H, W)`` ->
    average-pooled ``(B, C, s, s)`` -> conv 3x3 + ReLU + pool 2 -> ``tanh(W_c .)`` ``(B, hidden)``."""

    def __init__(self, channels: int, context_size: int, hidden_size: int, filters: int = 8) -> None:
        super().__init__()
        if context_size % 2:
            raise ValueError(f"context_size must be even; got {context_size}")
        self.context_size = context_size
        self.conv = nn.Conv2d(channels, filters, 3, padding=1)
        self.out = nn.Linear(filters * (context_size // 2) ** 2, hidden_size)

    def forward(self, images: Tensor) -> Tensor:
        coarse = F.adaptive_avg_pool2d(images, self.context_size)  # (B, C, s, s)
        features = F.max_pool2d(F.relu(self.conv(coarse)), 2)  # (B, filters, s/2, s/2)
        return torch.tanh(self.out(features.flatten(1)))  # (B, hidden)


class DeepRecurrentAttentionModel(nn.Module):
    """DRAM: glimpses, a two-layer core, a context network and an emission policy.

    Args:
        config: a :class:`DRAMConfig`.
    """

    def __init__(self, config: DRAMConfig = DRAMConfig()) -> None:
        super().__init__()
        self.config = config
        H = config.hidden_size
        self.glimpse = WhatWhereGlimpse(GlimpseSensor(config.patch_size, config.num_scales), config.in_channels, H)
        self.core1 = CoreNetwork(H, H, cell="lstm")  # r1: classification
        self.core2 = CoreNetwork(H, H, cell="lstm")  # r2: where to look
        self.context = ContextNetwork(config.in_channels, config.context_size, H)
        self.location = LocationNetwork(H, config.location_std)  # emission network
        self.baseline = BaselineNetwork(H)
        self.action = ActionNetwork(H, config.num_classes + 1)  # + the end symbol

    @property
    def num_glimpses(self) -> int:
        return (self.config.num_objects + 1) * self.config.glimpses_per_object

    def forward(self, images: Tensor, sample: Optional[bool] = None, locations: Optional[Tensor] = None) -> DRAMOutput:
        """Read ``images`` ``(B, C, H, W)``.

        Args:
            sample: draw locations from the policy (default: in training mode only).
            locations: ``(B, (S + 1) N, 2)``: look there instead (random glimpses, for comparison).

        Raises:
            ValueError: images of the wrong shape or dtype, or ``locations`` of the wrong shape.
        """
        c = self.config
        check_feature_map(images, "images", c.in_channels)
        if images.shape[-2:] != (c.image_size, c.image_size):
            raise ValueError(
                f"images must be (B, {c.in_channels}, {c.image_size}, {c.image_size}); got {shape_str(images.shape)}"
            )
        B, n_total = images.shape[0], self.num_glimpses
        if locations is not None and tuple(locations.shape) != (B, n_total, 2):
            raise ValueError(
                f"locations must have shape (B, {n_total}, 2) = ({B}, {n_total}, 2); got {shape_str(locations.shape)}"
            )
        sample = self.training if sample is None else sample
        r1 = self.core1.initial_state(B, images.device, images.dtype)
        r2 = self.core2.initial_state(B, images.device, images.dtype)
        if c.use_context:
            r2 = (self.context(images), r2[1])  # (B, H): the first location depends on the image
        log_probs, path, log_pis, baselines = [], [], [], []
        for n in range(n_total):
            given = None if locations is None else locations[:, n]  # (B, 2)
            loc, log_pi = self.location(r2[0], sample=sample, given=given)  # (B, 2) detached, (B,)
            baselines.append(self.baseline(r2[0].detach()))  # (B,)
            r1 = self.core1(self.glimpse(images, loc), r1)  # (B, H)
            r2 = self.core2(r1[0].detach(), r2)  # (B, H): REINFORCE does not reach the lower layer
            path.append(loc)
            log_pis.append(log_pi)
            if (n + 1) % c.glimpses_per_object == 0:
                log_probs.append(self.action(r1[0]))  # (B, K + 1)
        return DRAMOutput(
            torch.stack(log_probs, 1), torch.stack(path, 1), torch.stack(log_pis, 1), torch.stack(baselines, 1)
        )

    def targets(self, labels: Tensor) -> Tensor:
        """``labels`` ``(B, S)`` -> ``(B, S + 1)`` with the end symbol ``K`` appended."""
        check_rank(labels, "labels", 2, "(B, S)")
        if labels.shape[1] != self.config.num_objects:
            raise ValueError(f"labels must have S = {self.config.num_objects} columns; got {shape_str(labels.shape)}")
        end = torch.full_like(labels[:, :1], self.config.num_classes)
        return torch.cat([labels, end], 1)  # (B, S + 1)

    def loss(self, out: DRAMOutput, labels: Tensor) -> HybridLoss:
        """:func:`attnlib.hard.reinforce.hybrid_loss` summed over the ``S + 1`` labels; label ``s``'s
        reward credits the locations chosen up to its classification.  ``reward`` ``(B,)``: 1
        where every label (end symbol included) is right."""
        targets = self.targets(labels)  # (B, S + 1)
        N = self.config.glimpses_per_object
        terms = [
            hybrid_loss(
                out.log_probs[:, s],
                targets[:, s],
                out.location_log_probs[:, : (s + 1) * N],
                out.baselines[:, : (s + 1) * N],
            )
            for s in range(targets.shape[1])
        ]
        total, cls, rl, base = (torch.stack([getattr(t, f) for t in terms]).sum() for f in HybridLoss._fields[:4])
        reward = torch.stack([t.reward for t in terms], 1).min(1).values  # (B,)
        return HybridLoss(total, cls, rl, base, reward)

    @torch.no_grad()
    def read(self, images: Tensor) -> Tensor:
        """The policy's mean path, labels ``(B, S)`` (the end symbol dropped)."""
        return self(images, sample=False).log_probs.argmax(-1)[:, :-1]


DRAM = DeepRecurrentAttentionModel


def scan_path(config: DRAMConfig) -> Tensor:
    """A fixed path ``((S + 1) N, 2)``: the ``N`` glimpses of object ``s`` at the centre of the
    ``s``-th of ``S`` equal vertical strips (``x = -1 + (2 s + 1) / S``, ``y = 0``), those before the
    end symbol at the image centre.  For :func:`attnlib.data.digit_strips.digit_pair_scenes` (one digit per half,
    near the centre line) it looks at the left digit, then the right one, without learning."""
    S, N = config.num_objects, config.glimpses_per_object
    path = torch.zeros(S + 1, N, 2)  # (S + 1, N, 2): x, y in [-1, 1]
    path[:S, :, 0] = (-1 + (2 * torch.arange(S) + 1) / S)[:, None]
    return path.flatten(0, 1)  # ((S + 1) N, 2)


def random_paths(n: int, num_glimpses: int, generator: Optional[torch.Generator] = None) -> Tensor:
    """``(n, num_glimpses, 2)`` glimpse centres drawn uniformly from ``[-1, 1]^2``."""
    return torch.rand(n, num_glimpses, 2, generator=generator) * 2 - 1


def _given_paths(
    model: DeepRecurrentAttentionModel, glimpses: str, n: int, generator: torch.Generator
) -> Optional[Tensor]:
    """The locations ``(n, (S + 1) N, 2)`` a ``glimpses`` policy looks at (``None``: the model's own)."""
    if glimpses not in GLIMPSE_POLICIES:
        raise ValueError(f"glimpses must be one of {GLIMPSE_POLICIES}; got {glimpses!r}")
    if glimpses == "random":
        return random_paths(n, model.num_glimpses, generator)
    if glimpses == "scan":
        return scan_path(model.config).expand(n, -1, -1)
    return None


def train_dram(
    model: DeepRecurrentAttentionModel,
    images: Tensor,
    labels: Tensor,
    *,
    steps: int,
    batch_size: int = 64,
    lr: float = 3e-3,
    seed: int = 0,
    device: Union[str, torch.device] = "cpu",
    glimpses: str = "learned",
) -> History:
    """Adam on the summed hybrid loss (:meth:`DeepRecurrentAttentionModel.loss`) for ``steps``
    minibatches of ``images`` ``(N, C, H, W)`` and ``labels`` ``(N, S)``, with :func:`attnlib.train.fit`.

    ``glimpses``: ``"learned"`` (the model's own policy, the paper's training), or a control that
    looks where the model does not choose: ``"random"`` (:func:`random_paths`, drawn afresh for
    every minibatch from a generator seeded with ``seed``) or ``"scan"`` (:func:`scan_path`).  The
    controls train on the cross-entropy alone: the lower core, glimpse network and classifier,
    the very parameters the cross-entropy trains under ``"learned"`` (the policy is unused).

    Raises:
        ValueError: an unknown ``glimpses``.
    """
    generator = torch.Generator().manual_seed(seed)
    path_generator = torch.Generator().manual_seed(seed + 1)
    _given_paths(model, glimpses, 1, path_generator)  # check the name before training
    batches: list[Any] = []
    while len(batches) < steps:
        batches += list(minibatches(images, labels, batch_size=batch_size, generator=generator))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)

    def loss(_: nn.Module, b: Any) -> Tensor:
        given = _given_paths(model, glimpses, len(b[0]), path_generator)  # (B, (S + 1) N, 2) or None
        if given is None:
            return model.loss(model(b[0]), b[1]).total
        return model.loss(model(b[0], locations=given.to(b[0].device)), b[1]).classification

    return fit(
        model,
        optimizer,
        loss,
        batches[:steps],
        device=device,
        clip_grad_norm=5.0,
        show_progress=False,
    )


def visits(locations: Tensor, boxes: Tensor, size: int, margin: float = 0.0) -> Tensor:
    """``(B, O)`` bool: some glimpse centre of ``locations`` ``(B, N, 2)`` (``(x, y)`` in ``[-1, 1]``)
    lies inside box ``o`` of ``boxes`` ``(B, O, 4)`` (``(x, y, w, h)`` in pixels of a ``size``-pixel
    image) grown by ``margin`` pixels on every side (half a patch: the patch overlaps the box)."""
    pixels = (locations + 1) * size / 2  # (B, N, 2)
    x, y = pixels[..., 0][:, None, :], pixels[..., 1][:, None, :]  # (B, 1, N)
    b = boxes.to(pixels)[..., None]  # (B, O, 4, 1)
    x0, y0 = b[:, :, 0] - margin, b[:, :, 1] - margin  # (B, O, 1)
    x1, y1 = b[:, :, 0] + b[:, :, 2] + margin, b[:, :, 1] + b[:, :, 3] + margin  # (B, O, 1)
    inside = (x >= x0) & (x < x1) & (y >= y0) & (y < y1)  # (B, O, N)
    return inside.any(-1)  # (B, O)


def path_scores(locations: Tensor, boxes: Tensor, size: int, glimpses_per_object: int) -> dict[str, float]:
    """Where a path looks, strictly: glimpse centres (no margin) against the objects' boxes.

    ``locations`` ``(B, n, 2)`` (``(x, y)`` in ``[-1, 1]``, ``n >= S N``), ``boxes`` ``(B, S, 4)``
    (``(x, y, w, h)`` in pixels of a ``size``-pixel image), ``N`` = ``glimpses_per_object``.  Returns

    * ``on_object``: the share of the first ``S N`` glimpses (those before the end symbol) whose
      centre lies inside some object's box;
    * ``in_order``: the share of images where, for every object ``s``, one of the ``N`` glimpses
      taken before naming it (glimpses ``s N .. s N + N - 1``) has its centre inside box ``s``:
      each object looked at while it is read, in reading order.

    Raises:
        ValueError: shapes that do not match.
    """
    check_rank(locations, "locations", 3, "(B, n, 2)")
    check_rank(boxes, "boxes", 3, "(B, S, 4)")
    B, S = boxes.shape[:2]
    n_read = S * glimpses_per_object
    if locations.shape[0] != B or locations.shape[2] != 2 or locations.shape[1] < n_read:
        raise ValueError(
            f"locations must be (B, >= S N, 2) = ({B}, >= {n_read}, 2) for boxes {shape_str(boxes.shape)}; "
            f"got {shape_str(locations.shape)}"
        )
    pixels = (locations[:, :n_read] + 1) * size / 2  # (B, S N, 2)
    b = boxes.to(pixels)[:, None]  # (B, 1, S, 4)
    x, y = pixels[..., 0, None], pixels[..., 1, None]  # (B, S N, 1)
    inside = (
        (x >= b[..., 0]) & (x < b[..., 0] + b[..., 2]) & (y >= b[..., 1]) & (y < b[..., 1] + b[..., 3])
    )  # (B, S N, S)
    own = inside.view(B, S, glimpses_per_object, S).diagonal(dim1=1, dim2=3)  # (B, N, S): glimpse of s on box s
    return {
        "on_object": float(inside.any(-1).float().mean()),
        "in_order": float(own.any(1).all(-1).float().mean()),
    }


@torch.no_grad()
def dram_scores(
    model: DeepRecurrentAttentionModel, pairs: Any, seed: int = 0, glimpses: str = "learned"
) -> dict[str, float]:
    """Test scores of ``model`` on the kind of path it was trained on (see :func:`train_dram`):
    its policy's mean path (``"learned"``), random glimpses drawn from ``seed`` (``"random"``) or
    :func:`scan_path` (``"scan"``).

    ``pairs`` has ``images`` ``(N, C, H, W)``, ``labels`` ``(N, S)`` and ``boxes`` ``(N, S, 4)``
    (a :class:`~attnlib.data.digit_strips.DigitPairs`).  Returns the digit accuracy, the sequence
    accuracy (every label and the end symbol right), the lenient ``visits_all`` (the share of
    scenes where some glimpse's finest patch overlaps every object: :func:`visits` with a margin
    of half a patch) and the strict measures of :func:`path_scores`.
    """
    model.eval()
    targets = model.targets(pairs.labels)  # (N, S + 1)
    given = _given_paths(model, glimpses, len(targets), torch.Generator().manual_seed(seed))
    out = model(pairs.images, sample=False, locations=given)
    said = out.log_probs.argmax(-1)  # (N, S + 1)
    size = pairs.images.shape[-1]
    return {
        "digit_accuracy": float((said[:, :-1] == targets[:, :-1]).float().mean()),
        "seq_accuracy": float((said == targets).all(1).float().mean()),
        "visits_all": float(
            visits(out.locations, pairs.boxes, size, model.config.patch_size / 2).all(1).float().mean()
        ),
        **path_scores(out.locations, pairs.boxes, size, model.config.glimpses_per_object),
    }
