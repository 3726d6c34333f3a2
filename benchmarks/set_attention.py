"""Time and memory of ISAB (induced set attention) against SAB, as ratios.

Lee, Lee, Kim, Kosiorek, Choi & Teh (2019), "Set Transformer", ICML, arXiv:1810.00825: SAB
(their Eq. 8) compares every element of a set of ``n`` with every other, ``O(n^2 D)`` work and an
``n x n`` weight map per head; ISAB_m (Eqs. 9-10) routes the comparison through ``m`` learned
inducing points, two attentions of ``n x m`` weights, ``O(n m D)`` work.  This script runs both
blocks (:class:`attnlib.logical.SAB`, :class:`attnlib.logical.ISAB`) forward, in evaluation mode and
without gradient, on sets ``(B, n, D)`` of growing ``n`` at fixed ``m``, with one thread, and prints

* the median forward time of each (the default, fused attention kernel) and the ratio SAB / ISAB;
* memory: the number of elements of the largest tensor any operation returns (counted by a
  dispatch mode) on the path that materialises the attention weights (the equations as written,
  taken while :func:`attnlib.record_attention` listens): ``heads x n x n`` for SAB;
* the same count on the fused path: a fused kernel need not store the ``n x n`` map (on CPU,
  torch's flash kernel does not), so there both stay ``O(n D)`` and only the time shows the ``n^2``;
* on CUDA, the peak allocated bytes of a fused forward call as well.

Run from the repository root::

    .venv/bin/python benchmarks/set_attention.py            # n = 64 ... 4096, m = 16
    .venv/bin/python benchmarks/set_attention.py --quick    # n = 64 ... 1024
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any, Callable

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

import attnlib
from attnlib.logical import ISAB, SAB


class LargestTensor(TorchDispatchMode):
    """Keeps the number of elements of the largest tensor any operation returns."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func: Callable[..., Any], types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        sizes = [t.numel() for t in tree_leaves(out) if isinstance(t, torch.Tensor)]
        self.largest = max([self.largest, *sizes])
        return out


def measure(block: nn.Module, x: torch.Tensor, repeats: int) -> dict[str, float]:
    """Median seconds per forward call; largest tensor (elements) with materialised weights and fused;
    on CUDA the peak allocated bytes of a fused call."""
    cuda = x.is_cuda
    result: dict[str, float] = {}
    with torch.no_grad():
        block(x)  # warm-up
        times = []
        for _ in range(repeats):
            if cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
            block(x)
            if cuda:
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        result["seconds"] = statistics.median(times)
        with attnlib.record_attention(block), LargestTensor() as probe:
            block(x)  # the reference path: the weights are computed and kept
        result["largest_weights_path"] = probe.largest
        with LargestTensor() as probe:
            block(x)
        result["largest_fused"] = probe.largest
        if cuda:
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated()
            block(x)
            result["peak_bytes"] = torch.cuda.max_memory_allocated() - before
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="n = 64 ... 1024 only")
    parser.add_argument("--dim", type=int, default=64, help="D")
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--inducing", type=int, default=16, help="m (fixed while n grows)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    sab = SAB(args.dim, args.heads).to(device).eval()
    isab = ISAB(args.dim, args.inducing, args.heads).to(device).eval()
    sizes = (64, 256, 1024) if args.quick else (64, 256, 1024, 4096)
    print(
        f"device {device}, {args.threads} thread(s), D = {args.dim}, heads = {args.heads}, m = {args.inducing}, "
        f"B = {args.batch}; memory = elements of the largest tensor (weights kept / fused)"
    )
    print(
        f"{'n':>5} | {'SAB ms':>9} {'ISAB ms':>8} {'SAB/ISAB':>8} | {'SAB mem':>10} {'ISAB mem':>9} {'ratio':>7} | "
        f"{'fused SAB':>9} {'ISAB':>8}" + (" | peak bytes SAB / ISAB" if device.type == "cuda" else "")
    )
    for n in sizes:
        x = torch.randn(args.batch, n, args.dim, device=device)
        s, i = measure(sab, x, args.repeats), measure(isab, x, args.repeats)
        line = (
            f"{n:>5} | {1e3 * s['seconds']:9.2f} {1e3 * i['seconds']:8.2f} {s['seconds'] / i['seconds']:8.1f} | "
            f"{s['largest_weights_path']:>10.0f} {i['largest_weights_path']:>9.0f} "
            f"{s['largest_weights_path'] / i['largest_weights_path']:7.1f} | "
            f"{s['largest_fused']:>9.0f} {i['largest_fused']:>8.0f}"
        )
        if device.type == "cuda":
            line += f" | {s['peak_bytes'] / i['peak_bytes']:.1f}"
        print(line)


if __name__ == "__main__":
    main()
