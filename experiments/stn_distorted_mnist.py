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

Each model's state is checkpointed every ``--checkpoint-every`` steps in
``experiments/checkpoints/`` (git-ignored) and the table is saved when the run ends or its time budget is reached,
so an interrupted run, or one given ``--time-budget-min`` an hour at a time, resumes where it
stopped when the same command is run again; while models remain, the result file says
``"status": "partial"`` and stores each model's learning curve (test error every checkpoint).

Usage (from the repository root)::

    .venv/bin/python experiments/stn_distorted_mnist.py                  # full size, saves the result
    .venv/bin/python experiments/stn_distorted_mnist.py --quick          # smoke run: prints, saves nothing
    .venv/bin/python experiments/stn_distorted_mnist.py --variants RTS --iterations 20000
    .venv/bin/python experiments/stn_distorted_mnist.py --iterations 3000 --time-budget-min 60   # again to resume
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import attnlib  # noqa: E402
from attnlib.data.distortions import OUTPUT_SIZE, VARIANTS, load_distorted_mnist  # noqa: E402
from attnlib.results import load_result, require_clean_tree, save_result  # noqa: E402
from attnlib.train import Checkpoint, progress  # noqa: E402
from attnlib.vision.spatial_transformer import STCNN, STCNNConfig  # noqa: E402

NAME = "stn_distorted_mnist"
#: Table 1 of Jaderberg et al. (2015): test error in percent.
PAPER = {
    "CNN": {"R": 1.2, "RTS": 0.8, "P": 1.5, "E": 1.4},
    "ST-CNN (affine)": {"R": 0.7, "RTS": 0.5, "P": 0.8, "E": 1.2},
}
MODELS = {"CNN": False, "ST-CNN (affine)": True}  # name -> with a spatial transformer
DIFFERENCES = [
    "layer sizes are ours (attnlib.vision.spatial_transformer.STCNNConfig), not the paper's exact CNN",
    "Adam (lr 1e-3, divided by 10 after 2/3 and 5/6 of the iterations) instead of the paper's SGD schedule",
    "RTS: the transformer zooms the 42x42 input to a 28x28 output",
    "each training digit is distorted once (a fixed draw), not afresh at every visit",
    "the number of iterations, when below the paper's 150 000, is stated in config.iterations",
]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    p.add_argument("--iterations", type=int, default=150_000, help="optimiser steps per model")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0, help="seeds the distortions, the weights and the batches")
    p.add_argument("--train-limit", type=int, default=None, help="use only the first N training digits")
    p.add_argument("--test-limit", type=int, default=None, help="use only the first N test digits")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--checkpoint-dir", default="experiments/checkpoints", help="resumable state (git-ignored)")
    p.add_argument("--checkpoint-every", type=int, default=500, help="steps between checkpoints and test evaluations")
    p.add_argument(
        "--time-budget-min",
        type=float,
        default=None,
        help="stop at the next checkpoint after this many minutes; the same command resumes",
    )
    p.add_argument("--stop-after", type=int, default=None, help="stop after this many steps in this invocation")
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke run (60 iterations of 32, 2048 training and 1000 test digits, checkpoints in a temporary "
        "folder); prints the table, saves nothing",
    )
    p.add_argument(
        "--allow-dirty",
        action="store_true",
        help="run from a tree with uncommitted changes (the result is marked git_dirty)",
    )
    args = p.parse_args()
    if args.quick:
        args.iterations, args.batch_size, args.train_limit, args.test_limit = 60, 32, 2048, 1000
        args.checkpoint_every = 20
        if args.checkpoint_dir == p.get_default("checkpoint_dir"):
            args.checkpoint_dir = tempfile.mkdtemp(prefix="stn-quick-")
    else:
        require_clean_tree(args.allow_dirty)  # the saved result must name a commit holding this code
    return args


@torch.no_grad()
def test_error(model: STCNN, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1000) -> float:
    """Test error in percent."""
    was_training = model.training
    model.eval()
    wrong = 0
    for start in range(0, len(images), batch_size):
        logits = model(images[start : start + batch_size])
        wrong += int((logits.argmax(-1) != labels[start : start + batch_size]).sum())
    model.train(was_training)
    return 100.0 * wrong / len(images)


def train(
    model: STCNN,
    data: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
    args: argparse.Namespace,
    checkpoint: Checkpoint,
    deadline: float | None,
) -> dict:
    """Train (or resume) one model for ``args.iterations`` steps, checkpointing as it goes.

    Returns ``{"done": bool, "step": int, "curve": [...], "train_loss_last_100": float, "seconds": float}``;
    ``done`` is False when the time budget or ``--stop-after`` stopped it first.
    """
    train_x, train_y, test_x, test_y = data
    g = torch.Generator(device=train_x.device).manual_seed(args.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    milestones = [2 * args.iterations // 3, 5 * args.iterations // 6]
    schedule = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=0.1)
    step, curve, seconds_before = 0, [], 0.0
    recent: list[float] = []  # losses since the last checkpoint (the last 100 are reported)
    state = checkpoint.load()
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        g.set_state(state["generator"])
        step, curve, seconds_before, recent = state["step"], state["curve"], state["seconds"], state["recent"]
        print(f"resumed {checkpoint.path.name} at step {step}/{args.iterations}", flush=True)
    model.train()
    start = time.perf_counter()
    first = step
    bar = progress(total=args.iterations, desc="ST-CNN" if model.transformer else "CNN")
    bar.update(step)
    while step < args.iterations:
        index = torch.randint(len(train_x), (args.batch_size,), generator=g, device=train_x.device)
        loss = F.cross_entropy(model(train_x[index]), train_y[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        step += 1
        bar.update(1)
        recent = (recent + [loss.item()])[-100:]
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {loss.item()} at step {step}")
        if step % args.checkpoint_every == 0 or step == args.iterations:
            seconds = seconds_before + time.perf_counter() - start
            error = test_error(model, test_x, test_y)
            curve.append(
                {
                    "step": step,
                    "test_error": round(error, 2),
                    "train_loss": round(sum(recent) / len(recent), 4),
                    "seconds": round(seconds, 1),
                }
            )
            checkpoint.save(
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "schedule": schedule.state_dict(),
                    "generator": g.get_state(),
                    "step": step,
                    "curve": curve,
                    "seconds": seconds,
                    "recent": recent,
                }
            )
            out_of_time = deadline is not None and time.perf_counter() > deadline
            stopped = args.stop_after is not None and step - first >= args.stop_after
            if (out_of_time or stopped) and step < args.iterations:
                break
    bar.close()
    return {
        "done": step >= args.iterations,
        "step": step,
        "curve": curve,
        "train_loss_last_100": round(sum(recent) / max(len(recent), 1), 4),
        "seconds": round(seconds_before + time.perf_counter() - start, 1),
    }


def save_table(args: argparse.Namespace, entries: dict[str, dict], device: torch.device, complete: bool) -> None:
    """Write the table (finished models only in ``ours``; every model's curve in ``details``)."""
    ours: dict[str, dict[str, float]] = {name: {} for name in MODELS}
    for key, entry in entries.items():
        name, variant = key.rsplit(" ", 1)
        if entry["done"]:
            ours[name][variant] = entry["curve"][-1]["test_error"]
    path = save_result(
        NAME,
        {
            "description": "Test error (%) of a CNN and an ST-CNN (affine) on distorted MNIST, beside Table 1 "
            "of Jaderberg et al. (2015).",
            "status": "complete" if complete else "partial",
            "variants": args.variants,
            "ours": ours,
            "paper": PAPER,
            "config": {
                "iterations": args.iterations,
                "paper_iterations": 150_000,
                "batch_size": args.batch_size,
                "lr": args.lr,
                "seed": args.seed,
                "optimizer": "Adam, lr / 10 after 2/3 and 5/6 of the iterations",
                "train_limit": args.train_limit,
                "test_limit": args.test_limit,
                "rts_transformer_output": 28,
            },
            "differences_from_paper": DIFFERENCES,
            "details": entries,
        },
        device=device,
    )
    print(f"saved {path} ({'complete' if complete else 'partial'})", flush=True)


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = attnlib.default_device()
    print(f"device: {device}; iterations {args.iterations}, batch {args.batch_size}; variants {args.variants}")
    deadline = None if args.time_budget_min is None else time.perf_counter() + 60 * args.time_budget_min
    settings = {k: getattr(args, k) for k in ("iterations", "batch_size", "lr", "seed", "train_limit", "test_limit")}
    previous = None if args.quick else load_result(NAME)
    entries: dict[str, dict] = {}
    if previous and previous.get("config", {}).get("iterations") == args.iterations:
        entries = {k: v for k, v in previous.get("details", {}).items() if v.get("done")}
    complete = True
    for variant in args.variants:
        if all(f"{name} {variant}" in entries for name in MODELS):
            continue
        train_x, train_y = load_distorted_mnist(variant, "train", seed=args.seed, limit=args.train_limit)
        test_x, test_y = load_distorted_mnist(variant, "test", seed=args.seed, limit=args.test_limit)
        data = (train_x.to(device), train_y.to(device), test_x.to(device), test_y.to(device))
        size = OUTPUT_SIZE[variant]
        for name, use_st in MODELS.items():
            key = f"{name} {variant}"
            if key in entries:
                continue
            attnlib.seed_everything(args.seed)
            config = STCNNConfig(
                input_size=size, use_transformer=use_st, transformer_output=28 if use_st and size != 28 else None
            )
            model = STCNN(config).to(device)
            tag = name.split()[0].replace("-", "").lower()
            checkpoint = Checkpoint(Path(args.checkpoint_dir) / f"{NAME}_{variant}_{tag}.pt", settings)
            entry = train(model, data, args, checkpoint, deadline)
            entries[key] = entry
            error = entry["curve"][-1]["test_error"]
            print(
                f"{variant:>4} {name:<16} step {entry['step']}/{args.iterations}: test error {error:5.2f} %  "
                f"(paper {PAPER[name][variant]} %)  {entry['seconds']:.0f} s",
                flush=True,
            )
            if not entry["done"]:
                complete = False
                break
        if not complete:
            break
    print("\nTest error (%)      " + "".join(f"{v:>7}" for v in args.variants))
    for name in MODELS:
        row = [entries.get(f"{name} {v}") for v in args.variants]
        cells = "".join(f"{e['curve'][-1]['test_error']:>7.2f}" if e and e["done"] else f"{'-':>7}" for e in row)
        print(f"{'ours  ' + name:<20}" + cells)
        print(f"{'paper ' + name:<20}" + "".join(f"{PAPER[name][v]:>7.1f}" for v in args.variants))
    if args.quick:
        print("\n--quick is a smoke run: nothing saved.")
        return
    save_table(args, entries, device, complete)
    if not complete:
        print("time budget reached: run the same command again to resume", flush=True)


if __name__ == "__main__":
    main()
