"""A controlled comparison of the vision attention modules in one small CNN.

Every run trains :class:`attnlib.vision.backbone.SmallCNN` with one attention module after
each stage (or none), and everything else fixed: the same training subset, the same
optimiser and learning rate, the same number of steps and batch size, the same seeds.
Two data sets: Fashion-MNIST, and MNIST rotated by up to 90 degrees (the "R" variant of
:mod:`attnlib.data.distortions`). For each module it records the test accuracy of every
seed, the parameter count, and the CPU latency of a forward pass (median over repeated
passes of a fixed batch, measured in this process with a fixed number of threads, the
modules interleaved so that a change in the machine's load hits them all alike).

The default budget is small, so that the whole comparison runs in about 20 minutes on a
2-core laptop CPU: it measures what attention buys a small network trained briefly, not
what it buys a ResNet trained for days. Run from the repository root:

    .venv/bin/python experiments/vision_comparison.py              # writes attnlib/results/vision_comparison.json
    .venv/bin/python experiments/vision_comparison.py --quick      # a smoke test, nothing written
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import torch

import attnlib
from attnlib.data import load_fashion_mnist
from attnlib.results import require_clean_tree, save_result
from attnlib.vision.backbone import SmallCNN, SmallCNNConfig
from attnlib.vision.factory import ATTENTION_MODULES

DATASETS = ("fashion_mnist", "rotated_mnist")


def load(dataset: str, n_train: int, n_test: int) -> tuple[torch.Tensor, ...]:
    """``(x_train, y_train, x_test, y_test)``, images ``(N, 1, 28, 28)`` standardised with
    the training subset's mean and standard deviation."""
    if dataset == "fashion_mnist":
        xtr, ytr = load_fashion_mnist("train")
        xte, yte = load_fashion_mnist("test")
        xtr, xte = xtr[:n_train, None].float() / 255, xte[:n_test, None].float() / 255
        ytr, yte = ytr[:n_train], yte[:n_test]
    elif dataset == "rotated_mnist":
        from attnlib.data.distortions import load_distorted_mnist

        xtr, ytr = load_distorted_mnist("R", "train", seed=0, limit=n_train)
        xte, yte = load_distorted_mnist("R", "test", seed=0, limit=n_test)
    else:
        raise ValueError(f"dataset must be one of {DATASETS}; got {dataset!r}")
    mean, std = xtr.mean(), xtr.std()
    return (xtr - mean) / std, ytr, (xte - mean) / std, yte


def train_and_test(name: str | None, data: tuple[torch.Tensor, ...], seed: int, args: argparse.Namespace) -> float:
    """Train one model for ``args.steps`` steps and return its test accuracy."""
    xtr, ytr, xte, yte = data
    generator = attnlib.seed_everything(seed)  # model initialisation and batch order
    model = SmallCNN(name, config=SmallCNNConfig(widths=tuple(args.widths)))
    attnlib.train_classifier(
        model, xtr, ytr, steps=args.steps, batch_size=args.batch_size, lr=args.lr, generator=generator, device="cpu"
    )
    return attnlib.accuracy(model, xte, yte, batch_size=1000)


def latencies(names: list[str | None], args: argparse.Namespace) -> dict[str, float]:
    """Median forward time (ms) of a fixed batch for each module, the modules interleaved."""
    torch.manual_seed(0)
    x = torch.randn(args.latency_batch, 1, 28, 28)
    models = {str(n).lower(): SmallCNN(n, config=SmallCNNConfig(widths=tuple(args.widths))).eval() for n in names}
    times: dict[str, list[float]] = {key: [] for key in models}
    with torch.no_grad():
        for model in models.values():  # warm-up
            for _ in range(3):
                model(x)
        for _ in range(args.latency_repeats):
            for key, model in models.items():
                start = time.perf_counter()
                model(x)
                times[key].append(1000 * (time.perf_counter() - start))
    return {key: statistics.median(t) for key, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument(
        "--modules",
        nargs="+",
        default=["none", *ATTENTION_MODULES],
        help="'none' and names in attnlib.vision.factory.ATTENTION_MODULES",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--train-images", type=int, default=8000, help="first N training images")
    parser.add_argument("--test-images", type=int, default=5000, help="first N test images")
    parser.add_argument("--steps", type=int, default=150, help="optimisation steps per run")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-2, help="peak learning rate of Adam's one-cycle schedule")
    parser.add_argument("--widths", type=int, nargs="+", default=list(SmallCNNConfig().widths))
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads, for training and latency")
    parser.add_argument("--latency-batch", type=int, default=64)
    parser.add_argument("--latency-repeats", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help="a smoke test (tiny budget); writes nothing")
    parser.add_argument("--no-save", action="store_true", help="print the results, write nothing")
    parser.add_argument(
        "--allow-dirty",
        action="store_true",
        help="run from a tree with uncommitted changes (the result is marked git_dirty)",
    )
    args = parser.parse_args()
    require_clean_tree(args.allow_dirty)  # the saved result must name a commit holding this code
    if args.quick:
        args.train_images, args.test_images, args.steps, args.seeds, args.latency_repeats = 512, 500, 5, [0], 3

    torch.set_num_threads(args.threads)
    names = [None if m == "none" else m for m in args.modules]
    start, cpu_start = time.perf_counter(), time.process_time()
    accuracy: dict[str, dict[str, list[float]]] = {}
    for dataset in args.datasets:
        data = load(dataset, args.train_images, args.test_images)
        accuracy[dataset] = {}
        for name in names:
            key = str(name).lower()
            accuracy[dataset][key] = []
            for seed in args.seeds:
                acc = train_and_test(name, data, seed, args)
                accuracy[dataset][key].append(acc)
                print(
                    f"{dataset:>14} {key:>10} seed {seed}: test accuracy {acc:.4f} "
                    f"({time.perf_counter() - start:.0f} s so far)",
                    flush=True,
                )
    latency = latencies(names, args)
    config = SmallCNNConfig(widths=tuple(args.widths))
    params = {str(n).lower(): sum(p.numel() for p in SmallCNN(n, config=config).parameters()) for n in names}
    summary = {
        dataset: {
            key: {"mean": statistics.mean(accs), "std": statistics.stdev(accs) if len(accs) > 1 else 0.0}
            for key, accs in per_module.items()
        }
        for dataset, per_module in accuracy.items()
    }
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    for dataset in accuracy:
        print(f"\n{dataset}: module, accuracy mean +- std over seeds {args.seeds}, parameters, latency (ms)")
        for key in accuracy[dataset]:
            s = summary[dataset][key]
            print(f"  {key:>10}  {s['mean']:.4f} +- {s['std']:.4f}  {params[key]:>7}  {latency[key]:6.2f}")
    print(f"total {wall:.0f} s wall, {cpu:.0f} s CPU")
    if args.quick or args.no_save:
        return
    result: dict[str, Any] = {
        "description": "SmallCNN with one attention module after each stage (or none); same data, optimiser, "
        "steps and seeds for every module. Test accuracy per seed, its mean and sample standard "
        "deviation, parameters, CPU forward latency.",
        "budget": {
            "train_images": args.train_images,
            "test_images": args.test_images,
            "steps": args.steps,
            "batch_size": args.batch_size,
            "optimizer": f"Adam, one-cycle learning rate schedule peaking at {args.lr}",
            "seeds": args.seeds,
            "widths": args.widths,
            "torch_threads": args.threads,
            "latency": f"median of {args.latency_repeats} forward passes of a batch of {args.latency_batch} "
            f"28x28 images, eval mode, no grad, {args.threads} thread(s), modules interleaved",
            "wall_seconds": round(wall),
            "cpu_seconds": round(cpu),
        },
        "datasets": {
            "fashion_mnist": "Fashion-MNIST, first train/test images of the official splits",
            "rotated_mnist": "MNIST rotated uniformly in [-90, 90] degrees "
            "(attnlib.data.distortions, variant R, seed 0)",
        },
        "modules": [str(n).lower() for n in names],
        "params": params,
        "latency_ms": {k: round(v, 3) for k, v in latency.items()},
        "accuracy": accuracy,
        "summary": summary,
    }
    path = save_result("vision_comparison", result)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
