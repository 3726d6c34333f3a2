"""Time and peak memory of naive attention, attnlib's chunked attention and torch's SDPA.

Three ways to compute the same exact attention ``softmax(q k^T / sqrt(d)) v`` on inputs of
shape ``(B, H, N, d)``:

* ``naive``: the textbook form, which materialises the ``(N, N)`` scores and weights;
* ``chunked``: :func:`attnlib.efficient.chunked.chunked_attention`, the online softmax over
  ``(chunk, chunk)`` blocks in plain PyTorch;
* ``sdpa``: :func:`torch.nn.functional.scaled_dot_product_attention`, whose CPU kernel is
  itself a fused flash-attention kernel (and on CUDA picks FlashAttention or
  memory-efficient attention).

Printed as ratios against SDPA (and chunked against naive) in one table.

How memory is measured
----------------------
CPU: every (method, N) runs in a fresh subprocess.  It builds the inputs, runs the method
once on a tiny input (so that lazily loaded code is in memory), reads the process's peak
resident set size (``resource.getrusage(...).ru_maxrss``), runs the method once at size N,
and reads the peak again.  The difference is the extra memory the call needed at its
peak: every intermediate tensor is written, so its pages are resident, and large
allocations are returned to the system when freed, so only the high-water mark counts.
It is a page-granular measurement of the whole process (allocator overheads included),
not an estimate from tensor sizes.  CUDA: ``torch.cuda.max_memory_allocated`` minus the
memory allocated before the call, in the same process.

Run from the repository root (a few minutes on a 2-core CPU)::

    .venv/bin/python benchmarks/attention.py                 # N = 256 ... 8192
    .venv/bin/python benchmarks/attention.py --quick         # N = 256 ... 2048
    .venv/bin/python benchmarks/attention.py --save          # also attnlib/results/attention_benchmark.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from attnlib.efficient import chunked_attention  # noqa: E402
from attnlib.results import require_clean_tree, save_result  # noqa: E402

METHODS = ("naive", "chunked", "sdpa")
FULL_SIZES = (256, 512, 1024, 2048, 4096, 8192)
QUICK_SIZES = (256, 512, 1024, 2048)


def naive_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Textbook attention: the (B, H, N, N) scores and weights are stored in full."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, H, N, N)
    return torch.softmax(scores, dim=-1) @ v  # (B, H, N, d)


def method_fn(name: str, chunk: int) -> Callable[..., torch.Tensor]:
    if name == "naive":
        return naive_attention
    if name == "chunked":
        return lambda q, k, v: chunked_attention(q, k, v, chunk_size=chunk)
    if name == "sdpa":
        return F.scaled_dot_product_attention
    raise ValueError(f"unknown method {name!r}; choose from {METHODS}")


def inputs(n: int, args: argparse.Namespace, device: torch.device) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(n)
    return tuple(
        torch.randn(args.batch, args.heads, n, args.dim, generator=g).to(device) for _ in range(3)
    )  # (B, H, N, d)


def time_call(fn: Callable[[], Any], device: torch.device, min_time: float, max_repeats: int) -> float:
    """Median wall time of ``fn`` over at least 3 calls and about ``min_time`` seconds."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < 3 or (time.perf_counter() - start < min_time and len(times) < max_repeats):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure_cpu_worker(method: str, n: int, args: argparse.Namespace) -> dict[str, float]:
    """Runs inside a fresh subprocess: peak-RSS delta of one call, then its median time."""
    device = torch.device("cpu")
    fn = method_fn(method, args.chunk)
    q, k, v = inputs(n, args, device)
    with torch.no_grad():
        small = inputs(64, args, device)
        fn(*small)  # load lazily initialised code before the baseline
        del small
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # bytes (Linux reports KiB)
        out = fn(q, k, v)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        del out
        seconds = time_call(lambda: fn(q, k, v), device, args.min_time, args.max_repeats)
    return {"time_s": seconds, "peak_bytes": max(after - before, 0)}


def measure_cpu(method: str, n: int, args: argparse.Namespace) -> dict[str, float]:
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        method,
        str(n),
        "--batch",
        str(args.batch),
        "--heads",
        str(args.heads),
        "--dim",
        str(args.dim),
        "--chunk",
        str(args.chunk),
        "--threads",
        str(args.threads),
        "--min-time",
        str(args.min_time),
        "--max-repeats",
        str(args.max_repeats),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"worker {method} N={n} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure_cuda(method: str, n: int, args: argparse.Namespace) -> dict[str, float]:
    device = torch.device("cuda")
    fn = method_fn(method, args.chunk)
    q, k, v = inputs(n, args, device)
    with torch.no_grad():
        fn(*inputs(64, args, device))
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        out = fn(q, k, v)
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - before
        del out
        seconds = time_call(lambda: fn(q, k, v), device, args.min_time, args.max_repeats)
    return {"time_s": seconds, "peak_bytes": peak}


def run(device: torch.device, sizes: tuple[int, ...], args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    for n in sizes:
        row: dict[str, Any] = {"N": n}
        for method in METHODS:
            measure = measure_cuda if device.type == "cuda" else measure_cpu
            row[method] = measure(method, n, args)
            print(
                f"  {device.type} N={n:5d} {method:8s} {row[method]['time_s'] * 1e3:9.2f} ms "
                f"{row[method]['peak_bytes'] / 2**20:9.1f} MiB",
                file=sys.stderr,
                flush=True,
            )
        rows.append(row)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    """Absolute numbers, then ratios against SDPA and chunked against naive."""
    head = (
        f"{'N':>6} | {'time ms: naive':>14} {'chunked':>8} {'sdpa':>8} | {'peak MiB: naive':>15} {'chunked':>8} "
        f"{'sdpa':>7} | {'time/sdpa: naive':>16} {'chunked':>8} | {'mem/sdpa: naive':>15} {'chunked':>8} | "
        f"{'chunked/naive: time':>19} {'mem':>6}"
    )
    lines = [head, "-" * len(head)]
    mib = lambda r, m: r[m]["peak_bytes"] / 2**20  # noqa: E731
    ms = lambda r, m: r[m]["time_s"] * 1e3  # noqa: E731

    def ratio(a: float, b: float) -> str:
        return f"{a / b:.2f}" if b > 0 else "inf"

    for r in rows:
        lines.append(
            f"{r['N']:>6} | {ms(r, 'naive'):>14.1f} {ms(r, 'chunked'):>8.1f} {ms(r, 'sdpa'):>8.1f} | "
            f"{mib(r, 'naive'):>15.1f} {mib(r, 'chunked'):>8.1f} {mib(r, 'sdpa'):>7.1f} | "
            f"{ratio(ms(r, 'naive'), ms(r, 'sdpa')):>16} {ratio(ms(r, 'chunked'), ms(r, 'sdpa')):>8} | "
            f"{ratio(mib(r, 'naive'), mib(r, 'sdpa')):>15} {ratio(mib(r, 'chunked'), mib(r, 'sdpa')):>8} | "
            f"{ratio(ms(r, 'chunked'), ms(r, 'naive')):>19} {ratio(mib(r, 'chunked'), mib(r, 'naive')):>6}"
        )
    return "\n".join(lines)


def targets(rows: list[dict[str, Any]]) -> list[str]:
    """The issue's two targets, checked on the measured rows."""
    out = []
    by_n = {r["N"]: r for r in rows}
    if 4096 in by_n:
        r = by_n[4096]
        frac = r["chunked"]["peak_bytes"] / max(r["naive"]["peak_bytes"], 1)
        out.append(
            f"memory at N=4096: chunked / naive = {frac:.3f} (target <= 0.1): {'met' if frac <= 0.1 else 'NOT met'}"
        )
    large = [r for r in rows if r["N"] >= 1024]
    if large:
        slower = [r["N"] for r in large if r["chunked"]["time_s"] >= r["naive"]["time_s"]]
        out.append(
            "time from N=1024 on: chunked faster than naive "
            + ("at every N: met" if not slower else f"except at N={slower}: NOT met")
        )
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help=f"N in {QUICK_SIZES} instead of {FULL_SIZES}")
    p.add_argument("--sizes", type=int, nargs="+", help="explicit list of N")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--chunk", type=int, default=512, help="chunk size of attnlib's chunked attention")
    p.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch CPU threads")
    p.add_argument("--min-time", type=float, default=0.5, help="seconds of repeated calls per timing")
    p.add_argument("--max-repeats", type=int, default=20)
    p.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), default="auto", help="auto: CPU, and CUDA as well when available"
    )
    p.add_argument("--json", type=Path, help="write the results to this JSON file")
    p.add_argument("--save", action="store_true", help="write attnlib/results/attention_benchmark.json")
    p.add_argument("--worker", nargs=2, metavar=("METHOD", "N"), help=argparse.SUPPRESS)
    p.add_argument(
        "--allow-dirty",
        action="store_true",
        help="run from a tree with uncommitted changes (the result is marked git_dirty)",
    )
    args = p.parse_args()
    if args.save:
        require_clean_tree(args.allow_dirty)  # the saved result must name a commit holding this code
    torch.set_num_threads(args.threads)

    if args.worker:
        print(json.dumps(measure_cpu_worker(args.worker[0], int(args.worker[1]), args)))
        return

    sizes = tuple(args.sizes) if args.sizes else (QUICK_SIZES if args.quick else FULL_SIZES)
    devices = [torch.device("cpu")] if args.device in ("auto", "cpu") else []
    if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()):
        devices.append(torch.device("cuda"))
    config = {
        "batch": args.batch,
        "heads": args.heads,
        "dim": args.dim,
        "chunk": args.chunk,
        "threads": args.threads,
        "dtype": "float32",
        "sizes": list(sizes),
        "load_average_before": list(os.getloadavg()),
    }  # other jobs on the machine slow the timings
    results: dict[str, Any] = {"config": config, "devices": {}}
    print(
        f"attention (B={args.batch}, H={args.heads}, N, d={args.dim}) float32, non-causal; "
        f"chunk={args.chunk}; torch {torch.__version__}, {args.threads} CPU thread(s); "
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"
    )
    for device in devices:
        rows = run(device, sizes, args)
        config["load_average_after"] = list(os.getloadavg())
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
        results["devices"][device.type] = {"name": name, "rows": rows, "targets": targets(rows)}
        print(f"\n{device.type} ({name}): times are medians; peak = extra memory at the call's high-water mark")
        print(table(rows))
        for line in targets(rows):
            print("  " + line)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    if args.save:
        print("wrote", save_result("attention_benchmark", results))


if __name__ == "__main__":
    main()
