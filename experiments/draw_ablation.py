"""DRAW's read and write attention ablated one at a time, over seeds, at the DRAW chapter's quick budget.

Gregor et al. (2015, arXiv:1502.04623) compare DRAW with and without attention (Table 2),
switching the read and the write together.  This script trains the 2 x 2 grid -- attention
read or the whole ``[x, x^]``, attention write or a linear write of the whole canvas --
with the chapter's quick settings (``book/part4/draw.ipynb``): ``T = 8`` steps, LSTMs of 128
units, 10 latent dimensions per step, a 5 x 5 read and a 5 x 5 write, 150 Adam steps of 64
dynamically binarised digits at lr 3e-3, gradient norm clipped at 10.  Each (cell, seed)
seeds the model's initialisation and its batches with the seed, exactly as the chapter
does, so the chapter's seed-0 runs of the two diagonal cells reproduce the stored seed 0.

It also stores the average-digit baseline: a per-pixel Bernoulli with the training digits'
mean intensity (the probability that a dynamically binarised pixel is on), scored on the
same 1,000 binarised test digits.

The result, ``attnlib/results/draw_ablation.json``, holds per cell and seed the test
negative ELBO (nats per image), its reconstruction and KL parts and the training seconds.

Example::

    python experiments/draw_ablation.py --seeds 0 1 2        # 12 runs, about 3 minutes of one core
    python experiments/draw_ablation.py --quick              # smoke test, writes nothing
"""

from __future__ import annotations

import argparse
import math
import time
from typing import Any

import torch
import torch.nn.functional as F

import attnlib
from attnlib.data import load_mnist
from attnlib.draw import DRAW, DRAWConfig, binarize, negative_elbo
from attnlib.results import require_clean_tree, save_result

TEST_SEED = 2015  # the chapter's fixed binarisation of its 1,000 test digits
CELLS = {  # name: (read_attention, write_attention)
    "attention read, attention write": (True, True),
    "attention read, full write": (True, False),
    "full read, attention write": (False, True),
    "full read, full write": (False, False),
}


def train_generative(
    model: DRAW, train_digits: torch.Tensor, steps: int, seed: int, batch_size: int, lr: float
) -> list[float]:
    """The chapter's loop: Adam on the negative ELBO over dynamically binarised batches."""
    generator = attnlib.seed_everything(seed)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses: list[float] = []
    while len(losses) < steps:
        for (digits,) in attnlib.minibatches(
            train_digits.unsqueeze(1), batch_size=batch_size, generator=generator, drop_last=True
        ):
            x = binarize(digits, generator)  # (B, 1, 28, 28), a fresh binarisation
            out = model(x)
            loss = negative_elbo(out.logits, x, out.mu, out.logvar).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            optimizer.step()
            losses.append(loss.item())
            if len(losses) == steps:
                break
    return losses


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--num-steps", type=int, default=8, help="T")
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--latent", type=int, default=10)
    parser.add_argument("--read-n", type=int, default=5)
    parser.add_argument("--write-n", type=int, default=5)
    parser.add_argument("--test-limit", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="a few steps, one seed; writes nothing")
    parser.add_argument("--allow-dirty", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.steps, args.test_limit = [0], 3, 100
    else:
        require_clean_tree(args.allow_dirty)
    torch.set_num_threads(1)
    train_digits, _ = load_mnist("train")
    test_digits, _ = load_mnist("test")
    test_x = binarize(test_digits[: args.test_limit].unsqueeze(1), torch.Generator().manual_seed(TEST_SEED))

    marginal = train_digits.float().div(255).mean(0).clamp(1e-6, 1 - 1e-6)  # (28, 28): P(pixel on)
    logits = torch.logit(marginal).expand(len(test_x), 1, 28, 28)
    average_digit = F.binary_cross_entropy_with_logits(logits, test_x, reduction="sum").item() / len(test_x)
    print(f"average-digit baseline: {average_digit:.2f} nats; no learning: {784 * math.log(2):.2f}", flush=True)

    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in CELLS}
    for seed in args.seeds:
        for name, (read_attention, write_attention) in CELLS.items():
            attnlib.seed_everything(seed)
            model = DRAW(
                DRAWConfig(
                    num_steps=args.num_steps,
                    encoder_size=args.hidden,
                    decoder_size=args.hidden,
                    latent_size=args.latent,
                    read_n=args.read_n,
                    write_n=args.write_n,
                    read_attention=read_attention,
                    write_attention=write_attention,
                )
            )
            start = time.perf_counter()
            losses = train_generative(model, train_digits, args.steps, seed, args.batch_size, args.lr)
            seconds = time.perf_counter() - start
            model.eval()
            with torch.no_grad():
                torch.manual_seed(0)  # the chapter's posterior draw on the test digits
                out = model(test_x)
                bound = negative_elbo(out.logits, test_x, out.mu, out.logvar)
            runs[name].append(
                {
                    "seed": seed,
                    "test_nats": round(bound.loss.item(), 3),
                    "reconstruction": round(bound.reconstruction.item(), 3),
                    "kl": round(bound.kl.item(), 3),
                    "final_train_loss": round(sum(losses[-10:]) / 10, 3),
                    "parameters": sum(p.numel() for p in model.parameters()),
                    "seconds": round(seconds, 1),
                }
            )
            print(
                f"seed {seed} {name:>32}: {bound.loss.item():6.1f} nats (KL {bound.kl.item():4.1f}), {seconds:.0f} s",
                flush=True,
            )
    if args.quick:
        return
    save_result(
        "draw_ablation",
        {
            "settings": {
                "steps": args.steps,
                "batch_size": args.batch_size,
                "lr": args.lr,
                "num_steps": args.num_steps,
                "hidden": args.hidden,
                "latent": args.latent,
                "read_n": args.read_n,
                "write_n": args.write_n,
                "test_digits": len(test_x),
                "test_binarisation_seed": TEST_SEED,
                "seeds": args.seeds,
            },
            "average_digit_nats": round(average_digit, 3),
            "no_learning_nats": round(784 * math.log(2), 3),
            "runs": runs,
        },
    )


if __name__ == "__main__":
    main()
