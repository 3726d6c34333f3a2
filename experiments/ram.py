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

Deviations from the paper, recorded in the JSON: Adam with a cosine learning-rate decay
instead of the paper's plain stochastic gradient descent; a fixed location standard
deviation chosen by us (the paper gives none); no validation-based early stopping.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import asdict
from typing import Any, Callable

import torch

import attnlib
from attnlib.data.clutter import cluttered_mnist, translated_mnist
from attnlib.data.mnist import load_mnist
from attnlib.hard.ram import RAMConfig, RecurrentAttentionModel
from attnlib.hard.reinforce import hybrid_loss
from attnlib.results import load_result, provenance, require_clean_tree, save_result

TASKS = {
    # task: (patch_size, num_scales, glimpse counts of the paper's tables, location std)
    "mnist28": (8, 1, (6,), 0.22),
    "translated60": (12, 3, (4, 6, 8), 0.22),
    "cluttered60": (12, 3, (4, 6, 8), 0.22),
}
TEST_SEED = 12345  # placement seed of the fixed 60x60 test sets


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


def run(task: str, glimpses: int, args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
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
    history = []
    start = time.perf_counter()
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(train_labels), generator=generator)
        for i in range(0, len(order), args.batch_size):
            idx = order[i : i + args.batch_size]
            x, y = train_images(idx, epoch).to(device), train_labels[idx].to(device)
            out = model(x)
            loss = hybrid_loss(out.log_probs, y, out.location_log_probs, out.baselines)
            optimizer.zero_grad(set_to_none=True)
            loss.total.backward()
            optimizer.step()
            schedule.step()
        if (epoch + 1) % args.eval_every == 0 or epoch + 1 == args.epochs:
            err = evaluate(model, test_images, test_labels, device, 0)["test_error"]
            history.append({"epoch": epoch + 1, "test_error": err, "seconds": time.perf_counter() - start})
            print(
                f"{task} T={glimpses} epoch {epoch + 1}/{args.epochs}: test error {100 * err:.2f} % "
                f"({time.perf_counter() - start:.0f} s)",
                flush=True,
            )
    seconds = time.perf_counter() - start
    final = evaluate(model, test_images, test_labels, device, args.mc_samples)
    by_glimpses = [
        evaluate(model, test_images, test_labels, device, 0, num_glimpses=t)["test_error"]
        for t in range(1, glimpses + 1)
    ]
    full_size = args.train_limit is None and args.test_limit is None and args.epochs >= 50
    return {
        **final,
        "mc_samples": args.mc_samples,
        "error_by_glimpses_read_early": by_glimpses,
        "budget": {
            "epochs": args.epochs,
            "train_size": len(train_labels),
            "test_size": len(test_labels),
            "steps": total_steps,
            "batch_size": args.batch_size,
            "seconds": round(seconds, 1),
            "reduced": not full_size,
        },
        "optimizer": f"Adam lr {args.lr}, cosine decay to 0",
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
        "--allow-dirty",
        action="store_true",
        help="run from a tree with uncommitted changes (the result is marked git_dirty)",
    )
    args = parser.parse_args()
    require_clean_tree(args.allow_dirty)  # the saved result must name a commit holding this code
    if args.threads:
        torch.set_num_threads(args.threads)
    device = attnlib.default_device()
    tasks = list(TASKS) if args.task == "all" else [args.task]
    for task in tasks:
        for glimpses in args.glimpses or TASKS[task][2]:
            entry = run(task, glimpses, args, device)
            result = load_result("ram") or {}
            tasks_so_far = result.get("tasks", {})
            tasks_so_far.setdefault(task, {})[str(glimpses)] = entry
            path = save_result("ram", {"tasks": tasks_so_far}, device)
            print(
                f"{task} T={glimpses}: test error {100 * entry['test_error']:.2f} % "
                f"(Monte Carlo {100 * entry.get('test_error_mc', float('nan')):.2f} %) -> {path}",
                flush=True,
            )


if __name__ == "__main__":
    main()
