"""Sinusoidal, rotary and ALiBi positions trained short and tested long, on a local task and a
long-range one, over several seeds (the "Attention in today's language models" chapter).

ALiBi (Press, Smith & Lewis, 2022, arXiv:2108.12409) subtracts ``m_h (i - j)`` from every score,
so far keys lose weight however long the sequence: good for a rule that needs only the last few
tokens, a handicap for one that needs a token far back.  Two synthetic tasks over 8 symbols, the
same small decoder-only model (:class:`attnlib.transformer.DecoderOnlyLM`, 2 layers of 8 heads,
``E = 32``) for each positional scheme, trained on sequences of ``--train-len`` tokens and tested
on sequences of ``--test-lens``:

* ``previous``: the target at every position is the symbol just before it (distance 1);
* ``passkey``: a marker token sits at a random one of the first 4 positions, the key (one of the
  8 symbols) follows it, random symbols fill the rest, and the target at every position after
  the key is the key: a copy over a distance that grows with the position.

The score is the accuracy on the second half of each test sequence (beyond the training length
for every test length from twice it on); chance is 1/8 for both tasks, and no rule that ignores
the tokens before the current one does better.  Each (scheme, task, seed) trains from its own
seed on minibatches of 16 with Adam: the local task for 150 steps at lr 1e-2, as the chapter's
single run does; the passkey, which a small model learns more slowly, for 300 steps at lr 3e-3
(at 150 steps and lr 1e-2 ALiBi had not learned it even at the training length).
Results go to ``attnlib/results/positions_long_range.json``.

``--far`` instead trains the passkey models of ``--schemes`` (default ALiBi only) and tests them
on ``--far-sequences`` sequences of ``--far-len`` tokens, scoring the accuracy by the distance
from the key (bins ``--far-bins``), to find where ALiBi's distance penalty, ``m_h`` times the
distance for the head with the smallest slope, overcomes what the model learned to retrieve
over 32 tokens.  Results go to ``attnlib/results/positions_far.json``.

Example (about 5 minutes on one thread)::

    OMP_NUM_THREADS=1 python experiments/positions_long_range.py
    OMP_NUM_THREADS=1 python experiments/positions_long_range.py --far      # about 5 minutes
    OMP_NUM_THREADS=1 python experiments/positions_long_range.py --quick    # a smoke test, nothing written
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any, Callable

import torch
import torch.nn.functional as F

import attnlib
from attnlib.results import require_clean_tree, save_result
from attnlib.transformer import DecoderOnlyLM, LMConfig

SYMBOLS = 8  # symbols 0..7; the passkey task adds a marker, id 8
MARKER = SYMBOLS
SCHEMES = ("sinusoidal", "rope", "alibi")
Task = Callable[[int, int, torch.Generator], tuple[torch.Tensor, torch.Tensor]]


def previous_symbol_task(n: int, length: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random symbols ``(n, length)`` and the targets: the symbol one step back (-100: no target)."""
    x = torch.randint(0, SYMBOLS, (n, length), generator=generator)
    y = torch.roll(x, 1, dims=1)
    y[:, 0] = -100
    return x, y


def passkey_task(n: int, length: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random symbols ``(n, length)`` with the marker at a position ``p < 4`` and the key at ``p + 1``;
    the target at every position after the key is the key (-100 before it)."""
    x = torch.randint(0, SYMBOLS, (n, length), generator=generator)
    p = torch.randint(0, 4, (n,), generator=generator)  # (n,) where the marker sits
    rows = torch.arange(n)
    x[rows, p] = MARKER
    key = x[rows, p + 1]  # (n,) the symbol after the marker
    y = key[:, None].expand(n, length).clone()
    y[torch.arange(length)[None, :] <= (p + 1)[:, None]] = -100
    return x, y


TASKS: dict[str, Task] = {"previous": previous_symbol_task, "passkey": passkey_task}
BUDGETS = {"previous": (150, 1e-2), "passkey": (300, 3e-3)}  # task: (training steps, learning rate)


def train_and_test(
    positional: str, task: Task, seed: int, args: argparse.Namespace, steps: int, lr: float
) -> dict[str, Any]:
    """Train one model on ``task`` at ``args.train_len`` and test it at every length of ``args.test_lens``."""
    generator = attnlib.seed_everything(seed)
    model = DecoderOnlyLM(
        LMConfig(SYMBOLS + 1, d_model=32, num_heads=8, num_layers=2, d_ff=128, max_len=max(args.test_lens),
                 positional=positional)
    )  # fmt: skip
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    start = time.perf_counter()
    for _ in range(steps):
        x, y = task(16, args.train_len, generator)
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten(), ignore_index=-100)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    seconds = time.perf_counter() - start
    model.eval()
    test_gen = torch.Generator().manual_seed(10_000 + seed)
    accuracy = []
    with torch.no_grad():
        for n in args.test_lens:
            x, y = task(args.test_sequences, n, test_gen)
            said = torch.cat([model(chunk).argmax(-1) for chunk in x.split(8)])  # (N, n), 8 sequences at a time
            right = (said == y)[:, n // 2 :]  # (N, n - n // 2): the second half
            accuracy.append(float(right.float().mean()))
    return {"accuracy": accuracy, "final_loss": float(loss.detach()), "train_seconds": seconds}


def far_test(positional: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """Train a passkey model and score it on long sequences by the distance from the key."""
    steps, lr = (3, 1e-2) if args.quick else BUDGETS["passkey"]
    long_args = argparse.Namespace(**{**vars(args), "test_lens": [args.far_len]})
    generator = attnlib.seed_everything(seed)
    model = DecoderOnlyLM(
        LMConfig(SYMBOLS + 1, d_model=32, num_heads=8, num_layers=2, d_ff=128, max_len=args.far_len,
                 positional=positional)
    )  # fmt: skip
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        x, y = passkey_task(16, long_args.train_len, generator)
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten(), ignore_index=-100)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    x, y = passkey_task(args.far_sequences, args.far_len, torch.Generator().manual_seed(20_000 + seed))
    with torch.no_grad():
        said = torch.cat([model(chunk).argmax(-1) for chunk in x.split(1)])  # (N, L), one sequence at a time
    key_at = (x == MARKER).float().argmax(1) + 1  # (N,) the key sits just after the marker
    distance = torch.arange(args.far_len)[None, :] - key_at[:, None]  # (N, L)
    right = said == y  # (N, L)
    edges = [0, *args.far_bins]
    accuracy = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (distance > lo) & (distance <= hi) & (y != -100)
        accuracy.append(float(right[inside].float().mean()))
    return {"seed": seed, "bins": edges, "accuracy": accuracy, "steps": steps, "lr": lr}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--train-len", type=int, default=32)
    parser.add_argument("--test-lens", type=int, nargs="+", default=[32, 64, 128, 256, 512, 1024])
    parser.add_argument("--test-sequences", type=int, default=32)
    parser.add_argument("--far", action="store_true", help="the long passkey test instead (positions_far.json)")
    parser.add_argument("--schemes", nargs="+", default=["alibi"], help="with --far")
    parser.add_argument("--far-len", type=int, default=4096)
    parser.add_argument("--far-sequences", type=int, default=8)
    parser.add_argument("--far-bins", type=int, nargs="+", default=[32, 256, 1024, 2048, 3072, 4095])
    parser.add_argument("--quick", action="store_true", help="a smoke test (tiny budget); writes nothing")
    parser.add_argument("--allow-dirty", action="store_true")
    args = parser.parse_args()
    require_clean_tree(args.allow_dirty or args.quick)
    if args.quick:
        args.seeds, args.test_lens = [0], [32, 64]
    torch.set_num_threads(1)
    if args.far:
        if args.quick:
            args.far_len, args.far_sequences, args.far_bins = 128, 2, [32, 127]
        far: dict[str, list[dict[str, Any]]] = {}
        for positional in args.schemes:
            for seed in args.seeds:
                far.setdefault(positional, []).append(far_test(positional, seed, args))
                print("far", positional, seed, [round(a, 3) for a in far[positional][-1]["accuracy"]], flush=True)
        if not args.quick:
            save_result("positions_far", {"config": vars(args) | {"chance": 1 / SYMBOLS}, "runs": far})
        return
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for task_name, task in TASKS.items():
        steps, lr = (3, 1e-2) if args.quick else BUDGETS[task_name]
        for positional in SCHEMES:
            for seed in args.seeds:
                row = {
                    "seed": seed,
                    "steps": steps,
                    "lr": lr,
                    **train_and_test(positional, task, seed, args, steps, lr),
                }
                runs.setdefault(task_name, {}).setdefault(positional, []).append(row)
                print(task_name, positional, seed, [round(a, 3) for a in row["accuracy"]], flush=True)
            by_length = list(zip(*(r["accuracy"] for r in runs[task_name][positional])))
            print(
                f"  {task_name} {positional} mean: "
                + ", ".join(
                    f"{statistics.mean(a):.3f}±{statistics.stdev(a) if len(a) > 1 else 0.0:.3f}" for a in by_length
                ),
                flush=True,
            )
    if not args.quick:
        save_result("positions_long_range", {"config": vars(args) | {"chance": 1 / SYMBOLS}, "runs": runs})


if __name__ == "__main__":
    main()
