"""DRAW's read classifier with its window learned or frozen, beside RAM, over seeds (the DRAW chapter's budget).

Gregor et al. (2015, arXiv:1502.04623, section 4.1) classify cluttered MNIST from soft
glimpses placed by backpropagation; Mnih et al. (2014, arXiv:1406.6247) place hard glimpses
with REINFORCE.  The DRAW chapter (``book/part4/draw.ipynb``) trains both for 700 steps of 64
60 x 60 cluttered digits with 4 glimpses and credits the read classifier's lead to the exact
gradient for "where".  The control for that credit is the same read classifier with its
window frozen at its initial place (``ReadClassifierConfig(learn_window=False)``: every
glimpse is the centred 12 x 12 grid spanning the canvas, so only "what" is learned).

Variants, each per seed with the model's initialisation and its batches seeded as in the
chapter (so the chapter's seed-0 runs reproduce the stored seed 0):

* ``read, learned window``: the chapter's reader;
* ``read, frozen window``: the control;
* ``RAM``: the chapter's Recurrent Attention Model with the hybrid REINFORCE loss.

Result: ``attnlib/results/draw_reader.json``, test accuracy on the chapter's 500 test digits.

Example::

    python experiments/draw_reader.py --seeds 0 1 2     # 9 runs, about 4 minutes of one core
    python experiments/draw_reader.py --quick           # smoke test, writes nothing
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import torch

import attnlib
from attnlib.data import load_cluttered_mnist
from attnlib.draw import DRAWReadClassifier, ReadClassifierConfig
from attnlib.hard import RAMConfig, RecurrentAttentionModel, hybrid_loss
from attnlib.results import require_clean_tree, save_result

VARIANTS = ("read, learned window", "read, frozen window", "RAM")


def train_reader(learn_window: bool, data: Any, steps: int, glimpses: int, seed: int) -> DRAWReadClassifier:
    generator = attnlib.seed_everything(seed)
    config = ReadClassifierConfig(read_n=12, num_glimpses=glimpses, hidden_size=128, learn_window=learn_window)
    reader = DRAWReadClassifier(config)
    attnlib.train_classifier(
        reader, data.images, data.labels, steps=steps, batch_size=64, lr=3e-3, generator=generator, device="cpu"
    )
    return reader


def train_ram(data: Any, steps: int, glimpses: int, seed: int) -> RecurrentAttentionModel:
    """The chapter's loop: Adam with a one-cycle schedule on the hybrid loss."""
    generator = attnlib.seed_everything(seed)
    ram = RecurrentAttentionModel(
        RAMConfig(patch_size=12, num_scales=3, num_glimpses=glimpses, hidden_size=128, location_std=0.22)
    )
    optimizer = torch.optim.Adam(ram.parameters(), lr=3e-3)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=steps)
    step = 0
    while step < steps:
        for x, y in attnlib.minibatches(data.images, data.labels, batch_size=64, generator=generator, drop_last=True):
            out = ram.train()(x)
            loss = hybrid_loss(out.log_probs, y, out.location_log_probs, out.baselines).total
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            step += 1
            if step == steps:
                break
    return ram.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=700)
    parser.add_argument("--glimpses", type=int, default=4)
    parser.add_argument("--train-limit", type=int, default=10_000)
    parser.add_argument("--test-limit", type=int, default=500)
    parser.add_argument("--quick", action="store_true", help="a few steps, one seed; writes nothing")
    parser.add_argument("--allow-dirty", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.steps, args.train_limit, args.test_limit = [0], 3, 500, 100
    else:
        require_clean_tree(args.allow_dirty)
    torch.set_num_threads(1)
    train = load_cluttered_mnist("train", limit=args.train_limit, seed=0)
    test = load_cluttered_mnist("test", limit=args.test_limit, seed=0)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in VARIANTS}
    for seed in args.seeds:
        for name in VARIANTS:
            start = time.perf_counter()
            if name == "RAM":
                ram = train_ram(train, args.steps, args.glimpses, seed)
                with torch.no_grad():
                    accuracy = (ram.predict(test.images).argmax(-1) == test.labels).float().mean().item()
            else:
                reader = train_reader(name == "read, learned window", train, args.steps, args.glimpses, seed)
                accuracy = attnlib.accuracy(reader, test.images, test.labels)
            seconds = time.perf_counter() - start
            runs[name].append({"seed": seed, "accuracy": round(accuracy, 4), "seconds": round(seconds, 1)})
            print(f"seed {seed} {name:>22}: accuracy {100 * accuracy:5.1f} % ({seconds:.0f} s)", flush=True)
    if args.quick:
        return
    save_result(
        "draw_reader",
        {
            "settings": {
                "steps": args.steps,
                "batch_size": 64,
                "lr": 3e-3,
                "glimpses": args.glimpses,
                "read_n": 12,
                "hidden": 128,
                "train_digits": args.train_limit,
                "test_digits": args.test_limit,
                "canvas": 60,
                "seeds": args.seeds,
            },
            "runs": runs,
        },
    )


if __name__ == "__main__":
    main()
