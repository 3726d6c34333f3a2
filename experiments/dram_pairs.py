"""DRAM on two-digit 56x56 scenes (Ba, Mnih & Kavukcuoglu, 2015, arXiv:1412.7755): with and
without the context network, against random glimpses and against the soft-attention reader.

Three models are trained on the same scenes (:func:`attnlib.data.digit_pair_scenes`, digits
from MNIST's training set, within ``--vertical-jitter`` pixels of the centre line) for
``--steps`` minibatches (64 scenes for DRAM, 32 for the reader) and tested on scenes of
MNIST's test digits: DRAM with its context network, DRAM without it (the upper core starts
at zero, as RAM's core does), and an :class:`~attnlib.reading.AttentionReader` (soft attention over
the columns of a recursive CNN) reading the two digits as a string.  For DRAM the test also
replaces the policy by uniformly random glimpses, and counts the scenes whose glimpse path
visits both digits (some glimpse centre inside each digit's box).  Results go to
``attnlib/results/dram_pairs.json``.

Example::

    OMP_NUM_THREADS=1 python experiments/dram_pairs.py --steps 1000
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
from attnlib.results import save_result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--train", type=int, default=6_000)
    parser.add_argument("--vertical-jitter", type=int, default=6)
    parser.add_argument("--test", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    x, y = load_mnist("train")
    xt, yt = load_mnist("test")
    train = digit_pair_scenes(x, y, args.train, seed=0, vertical_jitter=args.vertical_jitter)
    test = digit_pair_scenes(xt, yt, args.test, seed=1, vertical_jitter=args.vertical_jitter)
    out: dict[str, Any] = {}
    for name, use_context in (("dram_context", True), ("dram_no_context", False)):
        attnlib.seed_everything(args.seed)
        config = DRAMConfig(use_context=use_context)
        model = DRAM(config)
        start = time.perf_counter()
        train_dram(model, train.images, train.labels, steps=args.steps, seed=args.seed)
        seconds = time.perf_counter() - start
        out[name] = {**dram_scores(model, test, seed=args.seed), "train_seconds": seconds, "config": asdict(config)}
        print(name, out[name], flush=True)
    attnlib.seed_everything(args.seed)
    reader = AttentionReader(ReaderConfig(encoder="recursive", steps=2, channels=16, height=56, width=56))
    lengths = torch.full((len(train.labels),), 2)
    history = train_reader(reader, train.images, train.labels, lengths, steps=args.steps, lr=5e-3, seed=args.seed)
    hyps = reader.read(test.images)
    out["soft_reader"] = {
        **reading_scores(hyps, test.labels, torch.full((len(test.labels),), 2)),
        "train_seconds": history.seconds,
        "parameters": reader.num_parameters(),
    }
    print("soft_reader", out["soft_reader"], flush=True)
    save_result("dram_pairs", {"config": vars(args), "runs": out})


if __name__ == "__main__":
    main()
