"""Plain vs recursive vs untied vs recurrent CNN encoders under the same attention reader
(Lee & Osindero, 2016, arXiv:1603.03101), on strips of 4 MNIST digits.

For each encoder kind of :data:`attnlib.reading.ENCODER_KINDS` and each seed, an
:class:`~attnlib.reading.AttentionReader` with ``T`` recursive steps (the plain CNN at the
same depth, ``T + 2`` convolutions) is trained for ``--steps`` minibatches on generated
strips and read greedily on test strips (digits from MNIST's test set).  Character and
sequence accuracy, the share of each character's attention inside its digit, parameter
counts and training time go to ``attnlib/results/reading_encoders.json``.

Example (about 3 minutes on one thread)::

    OMP_NUM_THREADS=1 python experiments/reading_encoders.py --steps 600 --seeds 0 1 2
    OMP_NUM_THREADS=1 python experiments/reading_encoders.py --quick      # a smoke test, nothing written
"""

from __future__ import annotations

import argparse
import time

import torch

import attnlib
from attnlib.data import digit_strips, load_mnist, span_attention_share
from attnlib.reading import ENCODER_KINDS, AttentionReader, ReaderConfig, reading_scores, stack_alignments, train_reader
from attnlib.results import require_clean_tree, save_result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--recursive-steps", type=int, default=2)
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--train", type=int, default=4000)
    parser.add_argument("--test", type=int, default=1000)
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--quick", action="store_true", help="a smoke test (tiny budget); writes nothing")
    parser.add_argument("--allow-dirty", action="store_true")
    args = parser.parse_args()
    require_clean_tree(args.allow_dirty or args.quick)
    if args.quick:
        args.steps, args.seeds, args.train, args.test = 5, [0], 200, 50
    torch.set_num_threads(1)
    x, y = load_mnist("train")
    xt, yt = load_mnist("test")
    train = digit_strips(x, y, args.train, seed=0, num_digits=(4, 4))
    test = digit_strips(xt, yt, args.test, seed=1, num_digits=(4, 4))
    width = train.images.shape[-1]
    runs: dict[str, list[dict[str, float]]] = {}
    for kind in ENCODER_KINDS:
        for seed in args.seeds:
            attnlib.seed_everything(seed)
            config = ReaderConfig(encoder=kind, steps=args.recursive_steps, channels=args.channels, width=width)
            model = AttentionReader(config)
            history = train_reader(
                model, train.images, train.labels, train.lengths, steps=args.steps, lr=args.lr, seed=seed
            )
            start = time.perf_counter()
            hyps = model.read(test.images)
            read_s = time.perf_counter() - start
            share = span_attention_share(stack_alignments(hyps, 4), test.spans, test.lengths, width)
            row = {
                **reading_scores(hyps, test.labels, test.lengths),
                "span_share": float(share.nanmean()),
                "parameters": model.num_parameters(),
                "encoder_parameters": model.column_encoder.features.num_parameters(),
                "depth": model.column_encoder.features.depth,
                "train_seconds": history.seconds,
                "read_seconds": read_s,
                "final_loss": sum(history.losses[-50:]) / len(history.losses[-50:]),
                "seed": seed,
            }
            print(kind, {k: round(v, 3) for k, v in row.items()}, flush=True)
            runs.setdefault(kind, []).append(row)
    if args.quick:
        return
    save_result(
        "reading_encoders",
        {"config": vars(args) | {"num_digits": 4, "width": width, "batch_size": 32}, "runs": runs},
    )


if __name__ == "__main__":
    main()
