"""Recurrent Attention Model on the paper's MNIST tasks (Mnih et al. 2014, Tables 1 and 2).

Tasks (arXiv:1406.6247, section 4.1):

* ``mnist28``: 28x28 MNIST, glimpses of 8x8 at 1 scale (the paper's Table 1 lists 2 to 7
  glimpses; 6 is the entry usually quoted);
* ``translated60``: the digit at a random position of a 60x60 canvas, 12x12 glimpses at
  3 scales, 4 / 6 / 8 glimpses;
* ``cluttered60``: the same with 4 pieces of 8x8 clutter cut from other digits.

Each (task, number of glimpses) is trained from scratch with the hybrid loss and the test
error (the policy's mean path, and a Monte-Carlo average over sampled paths) is merged into
``attnlib/results/ram.json`` under ``tasks[task][glimpses]``, together with the training
budget (epochs, training-set size, steps, seconds) and how it was run.  The translated and
cluttered training images are placed afresh every epoch (a pure function of the seed, the
epoch and the index); the test images are fixed.

Examples::

    python experiments/ram.py --task mnist28 --glimpses 6                 # one entry
    python experiments/ram.py --task all                                  # the paper's grid
    python experiments/ram.py --task mnist28 --glimpses 1 2 3 4 5 6 --epochs 20 --train-limit 20000

The state is checkpointed after every epoch in ``experiments/checkpoints/`` (git-ignored):
run the same command again after an interruption, or with ``--time-budget-min`` an hour at a
time, and it resumes; an entry stopped by the budget is saved with ``"status": "partial"``
and the epochs reached, so the chapter can show how far training got.  ``--quick`` is a
smoke run of a few steps that saves nothing (a unit test runs it).

Differences from the paper, recorded in the JSON (``differences_from_paper``): Adam with a
cosine learning-rate decay instead of stochastic gradient descent with momentum; a fixed
location standard deviation chosen by us (the paper gives none); a fixed number of epochs
and no validation-based early stopping.  Both test errors are stored and labelled: the
policy's mean path (``test_error``) and the average over sampled paths (``test_error_mc``).
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import torch

import attnlib
from attnlib.data.clutter import cluttered_mnist, translated_mnist
from attnlib.data.mnist import load_mnist
from attnlib.hard.ram import RAMConfig, RecurrentAttentionModel
from attnlib.hard.reinforce import hybrid_loss
from attnlib.results import load_result, provenance, require_clean_tree, save_result
from attnlib.train import Checkpoint, progress

TASKS = {
    # task: (patch_size, num_scales, glimpse counts of the paper's tables, location std)
    "mnist28": (8, 1, (6,), 0.22),
    "translated60": (12, 3, (4, 6, 8), 0.22),
    "cluttered60": (12, 3, (4, 6, 8), 0.22),
}
TEST_SEED = 12345  # placement seed of the fixed 60x60 test sets
DIFFERENCES = [
    "Adam with a cosine learning-rate decay instead of the paper's stochastic gradient descent with momentum",
    "a fixed location standard deviation chosen by us (the paper does not give its value)",
    "a fixed number of epochs and no validation-based early stopping (the paper does not give its training length)",
    "the 60x60 training images are placed afresh every epoch; the test images are fixed",
]


def make_batches(
    task: str, split: str, limit: int | None, seed: int
) -> tuple[Callable[[torch.Tensor, int], torch.Tensor], torch.Tensor]:
    """``(images_for(indices, epoch), labels)`` for a task and split; images (n, 1, H, W) in [0, 1]."""
    digits, labels = load_mnist(split)
    if limit is not None:
        digits, labels = digits[:limit], labels[:limit]
    split_code = 0 if split == "train" else 1

    def images_for(indices: torch.Tensor, epoch: int) -> torch.Tensor:
        if task == "mnist28":
            return digits[indices].float().div(255).unsqueeze(1)  # (n, 1, 28, 28)
        data_seed = seed * 100_003 + epoch if split == "train" else TEST_SEED
        maker = translated_mnist if task == "translated60" else cluttered_mnist
        return maker(digits, labels, seed=data_seed, indices=indices.tolist(), split_code=split_code).images

    return images_for, labels


@torch.no_grad()
def evaluate(
    model: RecurrentAttentionModel,
    images_for: Callable,
    labels: torch.Tensor,
    device: torch.device,
    mc_samples: int,
    batch_size: int = 500,
    num_glimpses: int | None = None,
) -> dict[str, float]:
    model.eval()
    correct_mean = correct_mc = 0
    for start in range(0, len(labels), batch_size):
        idx = torch.arange(start, min(start + batch_size, len(labels)))
        x, y = images_for(idx, 0).to(device), labels[idx].to(device)
        correct_mean += (model.predict(x, 0, num_glimpses).argmax(-1) == y).sum().item()
        if mc_samples > 0:
            correct_mc += (model.predict(x, mc_samples, num_glimpses).argmax(-1) == y).sum().item()
    n = len(labels)
    out = {"test_error": 1 - correct_mean / n}
    if mc_samples > 0:
        out["test_error_mc"] = 1 - correct_mc / n
    return out


def settings_for(task: str, glimpses: int, args: argparse.Namespace) -> dict[str, Any]:
    """What a checkpoint must match to be resumed (everything that changes the run)."""
    return {
        "task": task,
        "glimpses": glimpses,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "std": args.std,
        "seed": args.seed,
        "train_limit": args.train_limit,
        "test_limit": args.test_limit,
    }


def run(task: str, glimpses: int, args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """Train (or resume) one (task, glimpses) entry; returns its result entry, complete or partial.

    The state is checkpointed after every epoch; ``args.time_budget_min`` stops the run at an
    epoch boundary once that many minutes have passed in this invocation, and the entry is then
    marked ``"status": "partial"`` with the epochs reached.  Running the same command again
    resumes from the checkpoint.
    """
    patch, scales, _, std = TASKS[task]
    config = RAMConfig(
        patch_size=patch,
        num_scales=scales,
        num_glimpses=glimpses,
        location_std=args.std if args.std is not None else std,
    )
    generator = attnlib.seed_everything(args.seed)
    model = RecurrentAttentionModel(config).to(device)
    train_images, train_labels = make_batches(task, "train", args.train_limit, args.seed)
    test_images, test_labels = make_batches(task, "test", args.test_limit, args.seed)
    steps_per_epoch = math.ceil(len(train_labels) / args.batch_size)
    total_steps = args.epochs * steps_per_epoch
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total_steps) / total_steps))
    )
    checkpoint = Checkpoint(Path(args.checkpoint_dir) / f"ram_{task}_{glimpses}.pt", settings_for(task, glimpses, args))
    history: list[dict[str, float]] = []
    first_epoch, seconds_before = 0, 0.0
    state = checkpoint.load()
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        history, first_epoch, seconds_before = state["history"], state["epoch"], state["seconds"]
        print(f"{task} T={glimpses}: resumed from {checkpoint.path} at epoch {first_epoch}/{args.epochs}", flush=True)
    start = time.perf_counter()
    epoch = first_epoch
    for epoch in range(first_epoch, args.epochs):
        if args.time_budget_min is not None and time.perf_counter() - start > 60 * args.time_budget_min:
            break
        if args.stop_after_epochs is not None and epoch - first_epoch >= args.stop_after_epochs:
            break
        model.train()
        order = torch.randperm(len(train_labels), generator=generator)
        bar = progress(range(0, len(order), args.batch_size), desc=f"{task} T={glimpses} epoch {epoch + 1}")
        for i in bar:
            idx = order[i : i + args.batch_size]
            x, y = train_images(idx, epoch).to(device), train_labels[idx].to(device)
            out = model(x)
            loss = hybrid_loss(out.log_probs, y, out.location_log_probs, out.baselines)
            optimizer.zero_grad(set_to_none=True)
            loss.total.backward()
            optimizer.step()
            schedule.step()
        seconds = seconds_before + time.perf_counter() - start
        if (epoch + 1) % args.eval_every == 0 or epoch + 1 == args.epochs:
            err = evaluate(model, test_images, test_labels, device, 0)["test_error"]
            history.append({"epoch": epoch + 1, "test_error": err, "seconds": round(seconds, 1)})
            print(
                f"{task} T={glimpses} epoch {epoch + 1}/{args.epochs}: test error {100 * err:.2f} % ({seconds:.0f} s)",
                flush=True,
            )
        state = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "schedule": schedule.state_dict(),
            "generator": generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "history": history,
            "epoch": epoch + 1,
            "seconds": seconds,
        }
        checkpoint.save(state)
    else:
        epoch = args.epochs  # the loop ran to the end
    epochs_done = epoch
    seconds = seconds_before + time.perf_counter() - start
    if epochs_done == 0:
        raise SystemExit("no epoch trained: raise --time-budget-min")
    final = evaluate(model, test_images, test_labels, device, args.mc_samples)
    by_glimpses = [
        evaluate(model, test_images, test_labels, device, 0, num_glimpses=t)["test_error"]
        for t in range(1, glimpses + 1)
    ]
    full_size = args.train_limit is None and args.test_limit is None
    return {
        **final,
        "status": "complete" if epochs_done == args.epochs else "partial",
        "metrics": {
            "test_error": "one path per image: every glimpse at the location policy's mean (no sampling)",
            "test_error_mc": f"class probabilities averaged over {args.mc_samples} sampled glimpse paths per image",
            "paper_protocol": "Mnih et al. (2014) do not say whether their test error averages over sampled paths",
        },
        "mc_samples": args.mc_samples,
        "error_by_glimpses_read_early": by_glimpses,
        "budget": {
            "epochs": epochs_done,
            "epochs_planned": args.epochs,
            "train_size": len(train_labels),
            "test_size": len(test_labels),
            "steps": epochs_done * steps_per_epoch,
            "batch_size": args.batch_size,
            "seconds": round(seconds, 1),
            "reduced": not full_size or epochs_done < args.epochs,
        },
        "optimizer": f"Adam lr {args.lr}, cosine decay to 0 over {args.epochs} epochs",
        "differences_from_paper": DIFFERENCES,
        "config": asdict(config),
        "history": history,
        "provenance": provenance(device),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", choices=[*TASKS, "all"], default="mnist28")
    parser.add_argument("--glimpses", type=int, nargs="+", help="numbers of glimpses (default: the paper's)")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--std", type=float, default=None, help="location std (default: per task)")
    parser.add_argument(
        "--train-limit", type=int, default=None, help="use the first N training digits (reduced budget)"
    )
    parser.add_argument("--test-limit", type=int, default=None, help="use the first N test digits")
    parser.add_argument("--mc-samples", type=int, default=10, help="sampled paths averaged at test time")
    parser.add_argument("--eval-every", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument(
        "--checkpoint-dir", default="experiments/checkpoints", help="where the resumable state is kept (git-ignored)"
    )
    parser.add_argument(
        "--time-budget-min",
        type=float,
        default=None,
        help="stop at the first epoch boundary after this many minutes; the entry is saved as partial and the "
        "same command resumes it",
    )
    parser.add_argument(
        "--stop-after-epochs", type=int, default=None, help="stop after this many epochs in this invocation"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run (2 epochs of 256 training digits, 200 test digits, checkpoints in a temporary folder): "
        "prints, saves nothing",
    )
    parser.add_argument(
        "--allow-dirty",
        action="store_true",
        help="run from a tree with uncommitted changes (the result is marked git_dirty)",
    )
    args = parser.parse_args()
    if args.quick:
        args.epochs, args.train_limit, args.test_limit, args.mc_samples, args.eval_every = 2, 256, 200, 2, 1
        args.glimpses = args.glimpses or [2]
        if args.checkpoint_dir == parser.get_default("checkpoint_dir"):
            args.checkpoint_dir = tempfile.mkdtemp(prefix="ram-quick-")
    else:
        require_clean_tree(args.allow_dirty)  # the saved result must name a commit holding this code
    if args.threads:
        torch.set_num_threads(args.threads)
    device = attnlib.default_device()
    tasks = list(TASKS) if args.task == "all" else [args.task]
    for task in tasks:
        for glimpses in args.glimpses or TASKS[task][2]:
            entry = run(task, glimpses, args, device)
            summary = (
                f"{task} T={glimpses} ({entry['status']}, {entry['budget']['epochs']}/{args.epochs} epochs): "
                f"test error {100 * entry['test_error']:.2f} % on the mean path, "
                f"{100 * entry['test_error_mc']:.2f} % averaged over {args.mc_samples} sampled paths"
            )
            if args.quick:
                print(summary + " (--quick: nothing saved)", flush=True)
                continue
            result = load_result("ram") or {}
            tasks_so_far = result.get("tasks", {})
            tasks_so_far.setdefault(task, {})[str(glimpses)] = entry
            path = save_result("ram", {"tasks": tasks_so_far}, device)
            print(f"{summary} -> {path}", flush=True)
            if entry["status"] == "partial":
                print("time budget reached: run the same command again to resume", flush=True)
                return


if __name__ == "__main__":
    main()
