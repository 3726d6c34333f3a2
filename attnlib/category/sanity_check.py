"""Sanity checks for saliency maps: does the map change when the network's weights are randomised?

Adebayo, Gilmer, Muelly, Goodfellow, Hardt & Kim (2018), "Sanity Checks for Saliency Maps",
NeurIPS, arXiv:1810.03292.  A map meant to explain what a trained network learned must depend
on what it learned.  Their *model parameter randomisation test* re-initialises the trained
network's weights and recomputes the map:

* **cascading** randomisation: from the top layer down, one more layer at a time (stage ``k``
  has the ``k`` top layers random, the rest as trained);
* **independent** randomisation: one layer at a time, every other layer as trained;

and compares each randomised map with the original by the Spearman rank correlation of their
values (their Section 3; they also report SSIM and the correlation of absolute values).  A
method whose maps survive the randomisation (high correlation, or a map that still "finds the
object") is showing a property of the input, such as where the ink is, not of the model:
such a map can look right and mean nothing.

:func:`cascading_randomisation` and :func:`independent_randomisation` return randomised *copies*
(the given model is never modified); each named layer is re-initialised with its own
``reset_parameters()`` (its default initialisation) from a generator seeded with
``seed + j`` for the ``j``-th name, so a layer gets the same random weights in both schemes.
:func:`spearman_rank_correlation` compares maps image by image (ties get their average rank).
"""

from __future__ import annotations

import copy
from typing import Sequence

import torch
from torch import Tensor, nn

from attnlib._checks import shape_str

__all__ = ["randomise_layers", "cascading_randomisation", "independent_randomisation", "spearman_rank_correlation"]


def _check_layers(model: nn.Module, layers: Sequence[str]) -> None:
    modules = dict(model.named_modules())
    if isinstance(layers, str) or len(layers) == 0:
        raise ValueError(f"layers must be a non-empty sequence of module names; got {layers!r}")
    if len(set(layers)) != len(layers):
        raise ValueError(f"layers must not repeat a name; got {list(layers)}")
    for name in layers:
        if name not in modules:
            raise ValueError(f"no module named {name!r} in the model; expected one of {[n for n in modules if n]}")
        if not hasattr(modules[name], "reset_parameters") or not any(True for _ in modules[name].parameters()):
            raise ValueError(f"module {name!r} ({type(modules[name]).__name__}) has no parameters to re-initialise")


def _randomise(model: nn.Module, layers: Sequence[str], seeds: Sequence[int]) -> nn.Module:
    modules = dict(model.named_modules())
    for name, seed in zip(layers, seeds):
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(seed)
            modules[name].reset_parameters()
    return model


def randomise_layers(model: nn.Module, layers: Sequence[str], *, seed: int = 0) -> nn.Module:
    """A copy of ``model`` with the modules named ``layers`` re-initialised (the ``j``-th from seed
    ``seed + j``); ``model`` itself is unchanged.

    Raises:
        ValueError: an empty or repeated list, an unknown name, or a module without parameters.
    """
    _check_layers(model, layers)
    return _randomise(copy.deepcopy(model), layers, [seed + j for j in range(len(layers))])


def cascading_randomisation(model: nn.Module, layers: Sequence[str], *, seed: int = 0) -> list[tuple[str, nn.Module]]:
    """Cascading randomisation, ``layers`` listed from the top (output) layer down.

    Returns:
        ``[(layers[k], copy), ...]``: the ``k``-th copy has ``layers[0] ... layers[k]`` re-initialised
        (``layers[j]`` from seed ``seed + j``) and every other parameter as in ``model``, which is
        unchanged.  Copies keep ``model``'s train/eval mode and device.
    """
    _check_layers(model, layers)
    seeds = [seed + j for j in range(len(layers))]
    return [(name, _randomise(copy.deepcopy(model), layers[: k + 1], seeds[: k + 1])) for k, name in enumerate(layers)]


def independent_randomisation(model: nn.Module, layers: Sequence[str], *, seed: int = 0) -> list[tuple[str, nn.Module]]:
    """Independent randomisation: ``[(layers[j], copy), ...]``, the ``j``-th copy with only ``layers[j]``
    re-initialised (from seed ``seed + j``, the weights it gets in :func:`cascading_randomisation`)."""
    _check_layers(model, layers)
    return [(name, _randomise(copy.deepcopy(model), [name], [seed + j])) for j, name in enumerate(layers)]


def _average_ranks(x: Tensor) -> Tensor:
    """``(B, N)`` -> ranks ``0 .. N-1`` along each row, tied values sharing their average rank."""
    ranks = torch.empty_like(x)
    for row in range(x.shape[0]):
        values, order = x[row].sort()
        _, inverse, counts = torch.unique_consecutive(values, return_inverse=True, return_counts=True)
        starts = torch.cumsum(counts, 0) - counts  # rank of each group's first member
        average = starts.to(x.dtype) + (counts.to(x.dtype) - 1) / 2  # (groups,)
        ranks[row, order] = average[inverse]
    return ranks


def spearman_rank_correlation(a: Tensor, b: Tensor) -> Tensor:
    """Spearman's rank correlation between ``a`` and ``b``, image by image.

    Args:
        a, b: ``(B, ...)`` of the same shape, e.g. two sets of maps ``(B, 1, H, W)``.

    Returns:
        ``(B,)`` in ``[-1, 1]``: the Pearson correlation of the two maps' ranks (ties averaged);
        ``NaN`` for an image where either map is constant (e.g. all zero), where it is undefined.

    Raises:
        ValueError: different shapes, or fewer than two dimensions.
    """
    if a.shape != b.shape or a.dim() < 2:
        raise ValueError(
            f"a and b must have the same shape (B, ...); got a {shape_str(a.shape)}, b {shape_str(b.shape)}"
        )
    ra, rb = _average_ranks(a.detach().flatten(1).double()), _average_ranks(b.detach().flatten(1).double())  # (B, N)
    ra, rb = ra - ra.mean(1, keepdim=True), rb - rb.mean(1, keepdim=True)
    denominator = (ra.square().sum(1) * rb.square().sum(1)).sqrt()  # (B,)
    out = (ra * rb).sum(1) / denominator
    return torch.where(denominator > 0, out, torch.full_like(out, float("nan"))).to(a.dtype)
