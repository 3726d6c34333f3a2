"""Time and memory of EM attention (EMANet) against the non-local block, as ratios.

Li et al., 2019 (arXiv:1907.13426) replace the non-local block's ``N x N`` attention map,
``O(N^2 C)`` work and ``N^2`` memory, by ``K`` bases fitted with ``T`` EM iterations, ``O(N K C T)``
work and ``O(N (C + K))`` memory.  This script runs both drop-in blocks
(:class:`attnlib.stochastic.EMAttention`, :class:`attnlib.vision.NonLocalBlock`) forward, in
evaluation mode and without gradient, on ``(B, C, H, W)`` maps of growing ``N = H W``, and prints

* the median forward time of each and the ratio non-local / EM;
* memory: on CUDA the peak allocated bytes of the call (``torch.cuda.max_memory_allocated``);
  on CPU the number of elements of the largest tensor any operation returns (counted by a
  dispatch mode), which for the non-local block is its ``N x N`` map.

Run from the repository root::

    .venv/bin/python benchmarks/em_attention.py            # sides 16 ... 96 (N = 256 ... 9216)
    .venv/bin/python benchmarks/em_attention.py --quick    # sides 16 ... 48
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

from attnlib.stochastic import EMAttention
from attnlib.vision import NonLocalBlock


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


def measure(block: nn.Module, x: torch.Tensor, repeats: int) -> tuple[float, int]:
    """Median seconds per forward call, and memory (peak bytes on CUDA, largest tensor's elements on CPU)."""
    cuda = x.is_cuda
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
        if cuda:
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated()
            block(x)
            memory = torch.cuda.max_memory_allocated() - before
        else:
            with LargestTensor() as probe:
                block(x)
            memory = probe.largest
    return statistics.median(times), memory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="sides 16, 32, 48 only")
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--bases", type=int, default=64, help="K (64 in the paper)")
    parser.add_argument("--iterations", type=int, default=3, help="T (3 in the paper)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    em = EMAttention(args.channels, num_bases=args.bases, iterations=args.iterations).to(device).eval()
    nonlocal_block = NonLocalBlock(args.channels).to(device).eval()
    sides = (16, 32, 48) if args.quick else (16, 32, 48, 64, 96)
    unit = "bytes (peak)" if device.type == "cuda" else "elements (largest tensor)"
    print(
        f"device {device}, C = {args.channels}, K = {args.bases}, T = {args.iterations}, B = {args.batch}; "
        f"memory in {unit}"
    )
    print(f"{'N':>6} | {'EM ms':>8} {'NL ms':>9} {'time NL/EM':>10} | {'EM mem':>11} {'NL mem':>12} {'mem NL/EM':>9}")
    for side in sides:
        x = torch.randn(args.batch, args.channels, side, side, device=device)
        em_t, em_m = measure(em, x, args.repeats)
        nl_t, nl_m = measure(nonlocal_block, x, args.repeats)
        print(
            f"{side * side:>6} | {1e3 * em_t:8.2f} {1e3 * nl_t:9.2f} {nl_t / em_t:10.1f} | "
            f"{em_m:>11} {nl_m:>12} {nl_m / em_m:9.1f}"
        )


if __name__ == "__main__":
    main()
