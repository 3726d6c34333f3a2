"""Forward time of attnlib's MultiHeadAttention (fused path, need_weights=False) against
torch.nn.MultiheadAttention(batch_first=True) with the same weights, on the same input.

Target: attnlib within 1.1x of torch.  Printed as ratios (attnlib time / torch time), for
self-attention and cross-attention, in inference mode (eval, no_grad: where torch takes its
"fast path") and in training mode (forward with autograd).  Runs on CPU, and on CUDA too
when present.

    .venv/bin/python benchmarks/mha.py [--repeats 30] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from attnlib.transformer.mha import MultiHeadAttention

SIZES = [  # (B, T, E, H)
    (32, 32, 128, 4),
    (16, 128, 256, 8),
    (4, 512, 512, 8),
]


def _time(fn, repeats: int, device: torch.device) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run(device: torch.device, repeats: int) -> list[tuple]:
    rows = []
    for B, T, E, H in SIZES:
        torch.manual_seed(0)
        theirs = nn.MultiheadAttention(E, H, batch_first=True).to(device)
        ours = MultiHeadAttention.from_torch(theirs)
        x = torch.randn(B, T, E, device=device)
        memory = torch.randn(B, T // 2, E, device=device)
        for kind, (q, kv) in (("self", (x, x)), ("cross", (x, memory))):
            for mode in ("eval", "train"):
                theirs.train(mode == "train")
                ours.train(mode == "train")
                grad = torch.enable_grad() if mode == "train" else torch.no_grad()

                def f_ours(q=q, kv=kv, grad=grad, ours=ours):
                    with grad:
                        return ours(q, kv, kv)[0]

                def f_theirs(q=q, kv=kv, grad=grad, theirs=theirs):
                    with grad:
                        return theirs(q, kv, kv, need_weights=False)[0]

                t_ours, t_theirs = _time(f_ours, repeats, device), _time(f_theirs, repeats, device)
                rows.append((device.type, f"B={B} T={T} E={E} H={H}", kind, mode, t_ours, t_theirs))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    print(f"torch {torch.__version__}, CPU threads {torch.get_num_threads()}")
    print(f"{'device':6} {'size':24} {'kind':6} {'mode':6} {'attnlib ms':>11} {'torch ms':>9} {'ratio':>6}")
    for device in devices:
        for dev, size, kind, mode, t_ours, t_theirs in run(device, args.repeats):
            print(
                f"{dev:6} {size:24} {kind:6} {mode:6} {1e3 * t_ours:11.3f} {1e3 * t_theirs:9.3f} "
                f"{t_ours / t_theirs:6.2f}"
            )


if __name__ == "__main__":
    main()
