"""CNN versus ST-CNN on the four distorted-MNIST variants (Jaderberg et al., 2015, Table 1).

Trains the plain CNN and the CNN with an affine spatial transformer at its input
(:class:`attnlib.vision.spatial_transformer.STCNN`) on each of the variants R, RTS, P and E
(:mod:`attnlib.data.distortions`), measures the test error on the 10000 distorted test
digits, and writes the table beside the paper's numbers with
``attnlib.results.save_result("stn_distorted_mnist", ...)``.

What follows the paper: the four variants and their output sizes, the comparison CNN vs
ST-CNN (affine) with the same classifier, the budget (150 000 iterations of 256 examples,
as we read the paper's appendix A.1).  What is ours: the layer sizes (see
:class:`~attnlib.vision.spatial_transformer.STCNNConfig`), the optimiser (Adam, learning rate 1e-3,
divided by 10 after 2/3 and again after 5/6 of the iterations), the 42 -> 28 zoom of the
transformer on RTS, and a training set distorted once (a fixed draw per example) rather
than afresh at every visit.

Usage (from the repository root)::

    .venv/bin/python experiments/stn_distorted_mnist.py                  # full size, saves the result
    .venv/bin/python experiments/stn_distorted_mnist.py --quick          # smoke run: prints, saves nothing
    .venv/bin/python experiments/stn_distorted_mnist.py --variants RTS --iterations 20000
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import attnlib  # noqa: E402
from attnlib.data.distortions import OUTPUT_SIZE, VARIANTS, load_distorted_mnist  # noqa: E402
from attnlib.results import require_clean_tree, save_result  # noqa: E402
from attnlib.vision.spatial_transformer import STCNN, STCNNConfig  # noqa: E402

NAME = "stn_distorted_mnist"
#: Table 1 of Jaderberg et al. (2015): test error in percent.
PAPER = {
    "CNN": {"R": 1.2, "RTS": 0.8, "P": 1.5, "E": 1.4},
    "ST-CNN (affine)": {"R": 0.7, "RTS": 0.5, "P": 0.8, "E": 1.2},
}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    p.add_argument("--iterations", type=int, default=150_000, help="optimiser steps per model")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0, help="seeds the distortions, the weights and the batches")
    p.add_argument("--train-limit", type=int, default=None, help="use only the first N training digits")
    p.add_argument("--test-limit", type=int, default=None, help="use only the first N test digits")
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke run (60 iterations of 32, 2048 training and 1000 test digits); prints the table, saves nothing",
    )
    p.add_argument(
        "--allow-dirty",
        action="store_true",
        help="run from a tree with uncommitted changes (the result is marked git_dirty)",
    )
    args = p.parse_args()
    require_clean_tree(args.allow_dirty)  # the saved result must name a commit holding this code
    if args.quick:
        args.iterations, args.batch_size, args.train_limit, args.test_limit = 60, 32, 2048, 1000
    return args


@torch.no_grad()
def test_error(model: STCNN, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1000) -> float:
    """Test error in percent."""
    model.eval()
    wrong = 0
    for start in range(0, len(images), batch_size):
        logits = model(images[start : start + batch_size])
        wrong += int((logits.argmax(-1) != labels[start : start + batch_size]).sum())
    return 100.0 * wrong / len(images)


def train(model: STCNN, images: torch.Tensor, labels: torch.Tensor, args: argparse.Namespace, seed: int) -> float:
    """Train for ``args.iterations`` steps; returns the last 100 steps' mean loss."""
    g = torch.Generator(device=images.device).manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    milestones = [2 * args.iterations // 3, 5 * args.iterations // 6]
    schedule = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=0.1)
    model.train()
    tail = torch.zeros((), device=images.device)  # summed loss of the last 100 steps
    for step in attnlib.train.progress(range(args.iterations), desc="ST-CNN" if model.transformer else "CNN"):
        index = torch.randint(len(images), (args.batch_size,), generator=g, device=images.device)
        loss = F.cross_entropy(model(images[index]), labels[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if step >= args.iterations - 100:
            tail += loss.detach()
        if step % 1000 == 0 and not torch.isfinite(loss):  # checked now and then: .item() waits for the GPU
            raise FloatingPointError(f"loss became {loss.item()} at step {step}")
    return tail.item() / min(100, args.iterations)


def main() -> None:
    args = parse_args()
    device = attnlib.default_device()
    print(f"device: {device}; iterations {args.iterations}, batch {args.batch_size}; variants {args.variants}")
    table: dict[str, dict[str, float]] = {"CNN": {}, "ST-CNN (affine)": {}}
    details: dict[str, dict[str, float]] = {}
    start = time.perf_counter()
    for variant in args.variants:
        train_x, train_y = load_distorted_mnist(variant, "train", seed=args.seed, limit=args.train_limit)
        test_x, test_y = load_distorted_mnist(variant, "test", seed=args.seed, limit=args.test_limit)
        train_x, train_y, test_x, test_y = (t.to(device) for t in (train_x, train_y, test_x, test_y))
        size = OUTPUT_SIZE[variant]
        for name, use_st in [("CNN", False), ("ST-CNN (affine)", True)]:
            attnlib.seed_everything(args.seed)
            config = STCNNConfig(
                input_size=size, use_transformer=use_st, transformer_output=28 if use_st and size != 28 else None
            )
            model = STCNN(config).to(device)
            t0 = time.perf_counter()
            final_loss = train(model, train_x, train_y, args, seed=args.seed)
            error = test_error(model, test_x, test_y)
            table[name][variant] = round(error, 2)
            details[f"{name} {variant}"] = {
                "train_loss_last_100": round(final_loss, 4),
                "seconds": round(time.perf_counter() - t0, 1),
            }
            print(
                f"{variant:>4} {name:<16} test error {error:5.2f} %  (paper {PAPER[name][variant]} %)  "
                f"{time.perf_counter() - t0:.0f} s",
                flush=True,
            )
    print("\nTest error (%)      " + "".join(f"{v:>7}" for v in args.variants))
    for name in table:
        print(f"{'ours  ' + name:<20}" + "".join(f"{table[name][v]:>7.2f}" for v in args.variants))
        print(f"{'paper ' + name:<20}" + "".join(f"{PAPER[name][v]:>7.1f}" for v in args.variants))
    if args.quick:
        print("\n--quick is a smoke run: nothing saved.")
        return
    path = save_result(
        NAME,
        {
            "description": "Test error (%) of a CNN and an ST-CNN (affine) on distorted MNIST, beside Table 1 "
            "of Jaderberg et al. (2015).",
            "variants": args.variants,
            "ours": table,
            "paper": PAPER,
            "config": {
                "iterations": args.iterations,
                "batch_size": args.batch_size,
                "lr": args.lr,
                "seed": args.seed,
                "optimizer": "Adam, lr / 10 after 2/3 and 5/6 of the iterations",
                "train_limit": args.train_limit,
                "test_limit": args.test_limit,
                "rts_transformer_output": 28,
            },
            "details": details,
            "total_seconds": round(time.perf_counter() - start, 1),
        },
        device=device,
    )
    print(f"saved {path}")


if __name__ == "__main__":
    main()
