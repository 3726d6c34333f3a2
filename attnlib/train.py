"""A small training helper: seeding, device choice, minibatches, a progress bar, a loop.

Deliberately plain: :func:`fit` runs ``loss_fn(model, batch)``, backpropagates and steps
the optimiser, nothing more, so a chapter can show the loop it is using in one screen.
"""

from __future__ import annotations

import json
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor, nn

from ._checks import shape_str

__all__ = [
    "seed_everything",
    "default_device",
    "progress",
    "minibatches",
    "History",
    "fit",
    "train_classifier",
    "accuracy",
    "Checkpoint",
]

DEVICE_ENV_VAR = "ATTNLIB_DEVICE"


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python's, NumPy's and torch's generators (CUDA's too, when present).

    Returns:
        A fresh CPU ``torch.Generator`` seeded with ``seed``, for shuffling or data
        generation that should not depend on how many random numbers the model drew.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
    return torch.Generator().manual_seed(seed)


def default_device() -> torch.device:
    """The device chapters train on: ``$ATTNLIB_DEVICE`` if set, else CUDA when present, else CPU."""
    chosen = os.environ.get(DEVICE_ENV_VAR)
    if chosen:
        return torch.device(chosen)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


PROGRESS_REFRESH_S = 1.0  # seconds between progress bar redraws, at least


def progress(
    iterable: Optional[Iterable] = None,
    *,
    total: Optional[int] = None,
    desc: Optional[str] = None,
    leave: bool = False,
    disable: bool = False,
) -> Any:
    """A tqdm progress bar (a widget in notebooks, text in a terminal).

    ``leave=False`` removes the bar when it finishes, so stored notebook outputs keep
    only what the cell prints afterwards.  Without ``iterable``, update it by hand.

    The bar redraws at most once per second (``PROGRESS_REFRESH_S``).  In a notebook each
    redraw is two or three widget messages on the kernel's output channel; a test runner
    such as nbval reads that channel only after the cell ends, and ZeroMQ drops what
    overflows its queue, so tqdm's default of ten redraws a second on a long training cell
    can lose the cell's own output and idle signal (nbval then reports "Timeout ... waiting
    for output").
    """
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, leave=leave, disable=disable, mininterval=PROGRESS_REFRESH_S)


def minibatches(
    *tensors: Tensor,
    batch_size: int,
    shuffle: bool = True,
    generator: Optional[torch.Generator] = None,
    drop_last: bool = False,
) -> Iterator[tuple[Tensor, ...]]:
    """Iterate over aligned slices of tensors that share their first dimension ``N``.

    Args:
        tensors: each ``(N, ...)``.
        batch_size: rows per batch.
        shuffle: visit rows in a random order drawn from ``generator``.
        drop_last: skip a final batch smaller than ``batch_size``.

    Yields:
        Tuples of ``(batch_size, ...)`` tensors.
    """
    if not tensors:
        raise ValueError("minibatches needs at least one tensor")
    n = tensors[0].shape[0]
    for i, t in enumerate(tensors):
        if t.shape[0] != n:
            raise ValueError(
                f"all tensors must share their first dimension: tensor 0 has shape "
                f"{shape_str(tensors[0].shape)}, tensor {i} has shape {shape_str(t.shape)}"
            )
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}")
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        index = order[start : start + batch_size]
        yield tuple(t[index] for t in tensors)


@dataclass
class History:
    """What :func:`fit` measured: the loss of every step and the wall time."""

    losses: list[float] = field(default_factory=list)
    epoch_metrics: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0

    def smoothed(self, window: int = 20) -> np.ndarray:
        """Moving average of the step losses (for plotting)."""
        losses = np.asarray(self.losses, dtype=np.float64)
        if len(losses) < window:
            return losses
        return np.convolve(losses, np.ones(window) / window, mode="valid")


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, Tensor):
        return batch.to(device)
    if isinstance(batch, (tuple, list)):
        return type(batch)(_to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    return batch


def fit(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[nn.Module, Any], Tensor],
    batches: Union[Callable[[], Iterable[Any]], Sequence[Any]],
    *,
    epochs: int = 1,
    device: Optional[Union[str, torch.device]] = None,
    clip_grad_norm: Optional[float] = None,
    on_epoch_end: Optional[Callable[[int], dict[str, float]]] = None,
    show_progress: bool = True,
    desc: str = "training",
) -> History:
    """Train ``model`` for ``epochs`` passes over ``batches``.

    Args:
        model: moved to ``device`` and put in ``train()`` mode.
        optimizer: steps once per batch.
        loss_fn: ``loss_fn(model, batch) -> scalar loss``; the batch is already on ``device``.
        batches: a function returning a fresh iterable of batches for each epoch (e.g.
            ``lambda: minibatches(x, y, batch_size=64, generator=g)``), or a sequence
            reused every epoch.
        device: defaults to :func:`default_device`.
        clip_grad_norm: clip the gradients' global norm to this value.
        on_epoch_end: called with the epoch index after each epoch (in ``eval`` mode and
            without gradients); the metrics it returns are stored and shown.
        show_progress: display one progress bar for the whole run: over steps when
            ``batches`` is a sequence (its length is known), over epochs otherwise.

    Returns:
        The :class:`History`.  A non-finite loss stops training with a ``FloatingPointError``
        naming the step.
    """
    device = torch.device(device) if device is not None else default_device()
    model.to(device)
    history = History()
    per_step = not callable(batches)
    total = epochs * len(batches) if isinstance(batches, Sequence) else epochs
    bar = progress(total=total, desc=desc, disable=not show_progress)
    start = time.perf_counter()
    try:
        for epoch in range(epochs):
            model.train()
            for batch in batches() if callable(batches) else batches:
                loss = loss_fn(model, _to_device(batch, device))
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"loss became {loss.item()} at step {len(history.losses)} (epoch {epoch})")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if clip_grad_norm is not None:
                    nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
                optimizer.step()
                history.losses.append(loss.item())
                if per_step:
                    bar.update()
            if on_epoch_end is not None:
                model.eval()
                with torch.no_grad():
                    history.epoch_metrics.append(dict(on_epoch_end(epoch)))
            if not per_step:
                bar.update()
            bar.set_postfix(loss=f"{history.losses[-1]:.4g}" if history.losses else "-", refresh=False)
    finally:
        bar.close()
    model.eval()
    history.seconds = time.perf_counter() - start
    return history


def train_classifier(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    steps: int,
    batch_size: int = 64,
    lr: float = 1e-2,
    generator: Optional[torch.Generator] = None,
    device: Optional[Union[str, torch.device]] = None,
) -> nn.Module:
    """Train a classifier for a fixed number of steps: the budget of a controlled comparison.

    Adam with a one-cycle learning-rate schedule (peak ``lr``) and cross-entropy, over
    shuffled minibatches (the last incomplete batch of each pass is dropped), passing over
    the data as many times as ``steps`` needs.  Equal ``steps`` and ``generator`` seeds give
    every model of a comparison the same batches in the same order.

    Args:
        model: maps ``x`` ``(B, ...)`` to logits ``(B, classes)``.
        x: ``(N, ...)`` inputs.
        y: ``(N,)`` integer labels.
        steps: optimiser steps.
        generator: the batch order (e.g. the one :func:`seed_everything` returns).
        device: defaults to :func:`default_device`.

    Returns:
        ``model``, on ``device`` and in ``eval()`` mode.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1; got {steps}")
    device = torch.device(device) if device is not None else default_device()
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    step = 0
    while step < steps:
        for xb, yb in minibatches(x, y, batch_size=batch_size, generator=generator, drop_last=True):
            loss = nn.functional.cross_entropy(model(xb.to(device)), yb.to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            step += 1
            if step == steps:
                break
    return model.eval()


@torch.no_grad()
def accuracy(
    model: nn.Module, x: Tensor, y: Tensor, *, batch_size: int = 500, device: Optional[Union[str, torch.device]] = None
) -> float:
    """Share of ``x`` ``(N, ...)`` whose argmax logit equals the label ``y`` ``(N,)``, in eval mode."""
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.eval()
    correct = sum(
        (model(xb.to(device)).argmax(-1).cpu() == yb).sum().item()
        for xb, yb in minibatches(x, y, batch_size=batch_size, shuffle=False)
    )
    return correct / len(y)


class Checkpoint:
    """Resumable training state on disk, tied to the settings of the run that wrote it.

    A long run saves ``state`` (model and optimiser ``state_dict``, the epoch or step
    reached, the history, generator states, anything ``torch.save`` takes) now and then;
    started again with the same ``settings`` it loads that state and carries on.  A
    checkpoint written under different settings is never loaded: :meth:`load` returns
    ``None`` and says why, so a changed learning rate cannot silently continue an old run.

    Saving writes a temporary file and renames it over the old one, so an interruption
    in the middle of a save leaves the previous checkpoint intact.

    Args:
        path: the checkpoint file (its folder is created).
        settings: JSON-serialisable settings that must match for a resume (task, sizes,
            learning rate, seed, ...); stored beside the state.
    """

    def __init__(self, path: Union[str, Path], settings: dict[str, Any]) -> None:
        self.path = Path(path)
        self.settings = json.loads(json.dumps(settings))  # normalised: tuples become lists

    def load(self) -> Optional[dict[str, Any]]:
        """The saved state if a checkpoint with the same settings exists, else ``None``."""
        if not self.path.exists():
            return None
        saved = torch.load(self.path, map_location="cpu", weights_only=False)
        if saved.get("settings") != self.settings:
            changed = sorted(
                k
                for k in set(saved.get("settings", {})) | set(self.settings)
                if saved.get("settings", {}).get(k) != self.settings.get(k)
            )
            print(f"checkpoint {self.path} was written with other settings ({', '.join(changed)}): starting afresh")
            return None
        return saved["state"]

    def save(self, state: dict[str, Any]) -> None:
        """Store ``state`` atomically (temporary file, then rename)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        torch.save({"settings": self.settings, "state": state}, tmp)
        os.replace(tmp, self.path)

    def remove(self) -> None:
        """Delete the checkpoint (after a run has finished and saved its result)."""
        self.path.unlink(missing_ok=True)
