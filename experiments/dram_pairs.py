"""DRAM on two-digit 56x56 scenes (Ba, Mnih & Kavukcuoglu, 2015, arXiv:1412.7755): the learned
glimpse policy, with and without the context network, against the same model trained on paths it
does not choose, and against the soft-attention reader; several seeds.

Every model is trained on the same scenes (:func:`attnlib.data.digit_pair_scenes`, digits from
MNIST's training set, within ``--vertical-jitter`` pixels of the centre line) for ``--steps``
minibatches of ``--batch-size`` and tested on scenes of MNIST's test digits:

* ``dram_context``: DRAM with its context network, the policy learned by REINFORCE (the paper);
* ``dram_no_context``: the same without the context network (the upper core starts at zero);
* ``dram_random``: the same model trained, and tested, on uniformly random glimpses
  (``train_dram(glimpses="random")``): the fair version of "random glimpses", a model that knows
  the kind of path it gets;
* ``dram_scan``: trained and tested on the fixed scan :func:`attnlib.reading.scan_path` (left
  digit's half, then the right one's): the strongest rule that needs no learning where to look;
* ``soft_reader``: an :class:`~attnlib.reading.AttentionReader` (soft attention over the columns of
  a recursive CNN) reading the two digits as a string.

For DRAM the test also measures where the path looks (:func:`attnlib.reading.path_scores`: the share
of glimpse centres on a digit, and the share of scenes whose glimpses land on each digit while it
is read, in order) next to the lenient ``visits_all``.  Results, per seed, go to
``attnlib/results/dram_pairs.json``.

Example (about 6 minutes on one thread)::

    OMP_NUM_THREADS=1 python experiments/dram_pairs.py
    OMP_NUM_THREADS=1 python experiments/dram_pairs.py --quick      # a smoke test, nothing written
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict
from typing import Any

import torch

import attnlib
from attnlib.data import digit_pair_scenes, load_mnist
from attnlib.reading import (
    DRAM,
    AttentionReader,
    DRAMConfig,
    ReaderConfig,
    dram_scores,
    reading_scores,
    train_dram,
    train_reader,
)
from attnlib.results import require_clean_tree, save_result

DRAM_RUNS = {  # name: (use_context, glimpses)
    "dram_context": (True, "learned"),
    "dram_no_context": (False, "learned"),
    "dram_random": (False, "random"),
    "dram_scan": (False, "scan"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--train", type=int, default=6_000)
    parser.add_argument("--vertical-jitter", type=int, default=6)
    parser.add_argument("--test", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="a smoke test (tiny budget); writes nothing")
    parser.add_argument("--allow-dirty", action="store_true")
    args = parser.parse_args()
    require_clean_tree(args.allow_dirty or args.quick)
    if args.quick:
        args.steps, args.seeds, args.train, args.test = 5, [0], 200, 50
    torch.set_num_threads(1)
    x, y = load_mnist("train")
    xt, yt = load_mnist("test")
    train = digit_pair_scenes(x, y, args.train, seed=0, vertical_jitter=args.vertical_jitter)
    test = digit_pair_scenes(xt, yt, args.test, seed=1, vertical_jitter=args.vertical_jitter)
    runs: dict[str, list[dict[str, Any]]] = {}
    for seed in args.seeds:
        for name, (use_context, glimpses) in DRAM_RUNS.items():
            attnlib.seed_everything(seed)
            config = DRAMConfig(use_context=use_context)
            model = DRAM(config)
            start = time.perf_counter()
            train_dram(
                model,
                train.images,
                train.labels,
                steps=args.steps,
                batch_size=args.batch_size,
                seed=seed,
                glimpses=glimpses,
            )
            seconds = time.perf_counter() - start
            row = {
                **dram_scores(model, test, seed=seed, glimpses=glimpses),
                "glimpses": glimpses,
                "train_seconds": seconds,
                "seed": seed,
                "config": asdict(config),
            }
            runs.setdefault(name, []).append(row)
            print(name, seed, {k: round(v, 3) for k, v in row.items() if isinstance(v, float)}, flush=True)
        attnlib.seed_everything(seed)
        reader = AttentionReader(ReaderConfig(encoder="recursive", steps=2, channels=16, height=56, width=56))
        lengths = torch.full((len(train.labels),), 2)
        history = train_reader(
            reader,
            train.images,
            train.labels,
            lengths,
            steps=args.steps,
            batch_size=args.batch_size,
            lr=5e-3,
            seed=seed,
        )
        hyps = reader.read(test.images)
        row = {
            **reading_scores(hyps, test.labels, torch.full((len(test.labels),), 2)),
            "train_seconds": history.seconds,
            "parameters": reader.num_parameters(),
            "seed": seed,
        }
        runs.setdefault("soft_reader", []).append(row)
        print("soft_reader", seed, {k: round(v, 3) for k, v in row.items() if isinstance(v, float)}, flush=True)
    if not args.quick:
        save_result("dram_pairs", {"config": vars(args), "runs": runs})


if __name__ == "__main__":
    main()
