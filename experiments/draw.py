"""DRAW on binarised MNIST at the paper's size (Gregor et al. 2015, arXiv:1502.04623, Table 2).

The paper's MNIST generation model with attention: T = 64 steps, a 2x2 read, a 5x5 write,
encoder and decoder LSTMs of 256 units and 100 latent dimensions per step.  Beside it, at the
same sizes and budget, DRAW without attention and a plain VAE (Kingma and Welling, 2014).

Data: the 60,000 MNIST training digits, binarised *dynamically* (each pixel drawn afresh from
Bernoulli(intensity) for every batch, from the run's seeded generator); the 10,000 test digits
binarised once with a fixed seed (``TEST_SEED``).  The test bound is the negative ELBO in nats
per image (one posterior sample per image, seeded), and optionally an importance-sampled
estimate of -log p(x) on the first test images (``--iw-samples``).

Each variant's result is merged into ``attnlib/results/draw.json`` under ``runs[variant]``,
with its settings, budget and provenance, only when its training has finished.  Training
checkpoints every ``--checkpoint-every`` steps to ``--checkpoint-dir`` and resumes from there
when rerun with the same settings.  Like every experiment, it refuses to start from a tree
with uncommitted changes (``--allow-dirty`` overrides; the result is then marked dirty).

Examples::

    python experiments/draw.py --quick                                # smoke test, writes nothing
    python experiments/draw.py --variant attention --steps 100000     # the paper's model (a GPU)
    python experiments/draw.py --variant attention no_attention vae --steps 3000 --num-steps 16 \\
        --threads 1                                                   # a reduced CPU run

Deviations, recorded in the JSON: Adam with a cosine learning-rate decay, gradient-norm
clipping at 10 and the attention windows' initialisation (see attnlib.draw.filterbank) are
our choices; the paper does not give its optimiser's schedule.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Union

import torch

import attnlib
from attnlib.data import load_mnist
from attnlib.draw import DRAW, VAE, DRAWConfig, VAEConfig, binarize, importance_log_likelihood, negative_elbo
from attnlib.results import load_result, provenance, require_clean_tree, save_result

TEST_SEED = 20150215  # the fixed binarisation of the test set
PAPER_NATS = {"attention": 80.97}  # the -log p(x) bound of the paper's Table 2 (arXiv:1502.04623)

Model = Union[DRAW, VAE]


def build(variant: str, args: argparse.Namespace) -> Model:
    if variant == "vae":
        return VAE(VAEConfig(hidden_size=args.vae_hidden, latent_size=args.vae_latent))
    attention = variant == "attention"
    return DRAW(
        DRAWConfig(
            num_steps=args.num_steps,
            read_n=args.read_n,
            write_n=args.write_n,
            read_attention=attention,
            write_attention=attention,
            encoder_size=args.hidden,
            decoder_size=args.hidden,
            latent_size=args.latent,
        )
    )


@torch.no_grad()
def test_bound(model: Model, x: torch.Tensor, device: torch.device, batch_size: int = 500) -> float:
    """The negative ELBO in nats per image over ``x`` (one seeded posterior sample per image)."""
    model.eval()
    torch.manual_seed(TEST_SEED)
    total = 0.0
    for start in range(0, len(x), batch_size):
        xb = x[start : start + batch_size].to(device)
        out = model(xb)
        total += negative_elbo(out.logits, xb, out.mu, out.logvar).loss.item() * len(xb)
    return total / len(x)


def run(variant: str, args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    generator = attnlib.seed_everything(args.seed)
    train_digits, _ = load_mnist("train")
    test_digits, _ = load_mnist("test")
    if args.train_limit:
        train_digits = train_digits[: args.train_limit]
    test_x = binarize(test_digits[: args.test_limit].unsqueeze(1), torch.Generator().manual_seed(TEST_SEED))
    model = build(variant, args).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, args.steps) / args.steps))
    )
    step, history, seconds = 0, [], 0.0
    checkpoint = Path(args.checkpoint_dir) / f"draw_{variant}_{args.num_steps}_{args.hidden}_{args.steps}.pt"
    if not args.quick and checkpoint.exists():
        state = torch.load(checkpoint, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        generator.set_state(state["generator"])
        step, history, seconds = state["step"], state["history"], state["seconds"]
        print(f"{variant}: resumed at step {step}", flush=True)
    start = time.perf_counter() - seconds
    while step < args.steps:
        model.train()
        for (digits,) in attnlib.minibatches(
            train_digits, batch_size=args.batch_size, generator=generator, drop_last=True
        ):
            x = binarize(digits.unsqueeze(1), generator).to(device)  # (B, 1, 28, 28), a fresh binarisation
            out = model(x)
            loss = negative_elbo(out.logits, x, out.mu, out.logvar).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            optimizer.step()
            schedule.step()
            step += 1
            if step % args.eval_every == 0 or step == args.steps:
                bound = test_bound(model, test_x, device)
                history.append(
                    {
                        "step": step,
                        "train_loss": loss.item(),
                        "test_nats": bound,
                        "seconds": round(time.perf_counter() - start, 1),
                    }
                )
                print(
                    f"{variant} step {step}/{args.steps}: test -ELBO {bound:.2f} nats "
                    f"({time.perf_counter() - start:.0f} s)",
                    flush=True,
                )
                model.train()
            if not args.quick and (step % args.checkpoint_every == 0 or step == args.steps):
                checkpoint.parent.mkdir(parents=True, exist_ok=True)
                torch.save(
                    {
                        "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "schedule": schedule.state_dict(),
                        "generator": generator.get_state(),
                        "step": step,
                        "history": history,
                        "seconds": time.perf_counter() - start,
                    },
                    checkpoint,
                )
            if step == args.steps:
                break
    seconds = time.perf_counter() - start
    result: dict[str, Any] = {
        "test_nats": test_bound(model, test_x, device),
        "test_size": len(test_x),
        "parameters": sum(p.numel() for p in model.parameters()),
        "budget": {
            "steps": args.steps,
            "batch_size": args.batch_size,
            "train_size": len(train_digits),
            "epochs": round(args.steps * args.batch_size / len(train_digits), 2),
            "seconds": round(seconds, 1),
        },
        "binarisation": f"dynamic (train); test binarised once with seed {TEST_SEED}",
        "optimizer": f"Adam lr {args.lr}, cosine decay to 0, gradient norm clipped at 10",
        "config": asdict(model.config),
        "history": history,
        "provenance": provenance(device),
    }
    if args.iw_samples:
        model.eval()
        torch.manual_seed(TEST_SEED)
        log_p = importance_log_likelihood(model, test_x[: args.iw_images].to(device), args.iw_samples)
        result["importance_sampled_nats"] = {
            "value": -log_p.mean().item(),
            "images": args.iw_images,
            "samples": args.iw_samples,
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--variant", nargs="+", choices=["attention", "no_attention", "vae"], default=["attention"])
    parser.add_argument("--steps", type=int, default=100_000, help="optimiser steps")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--num-steps", type=int, default=64, help="T, DRAW's steps (paper: 64)")
    parser.add_argument("--read-n", type=int, default=2)
    parser.add_argument("--write-n", type=int, default=5)
    parser.add_argument("--hidden", type=int, default=256, help="LSTM units (paper: 256)")
    parser.add_argument("--latent", type=int, default=100, help="Z per step (paper: 100)")
    parser.add_argument("--vae-hidden", type=int, default=1000)
    parser.add_argument("--vae-latent", type=int, default=100)
    parser.add_argument("--train-limit", type=int, default=0, help="use only the first N training digits")
    parser.add_argument("--test-limit", type=int, default=10_000)
    parser.add_argument("--eval-every", type=int, default=5_000)
    parser.add_argument("--checkpoint-every", type=int, default=1_000)
    parser.add_argument(
        "--checkpoint-dir",
        default=str(Path.home() / ".cache" / "attnlib" / "checkpoints"),
        help="where training checkpoints go (outside the repository by default)",
    )
    parser.add_argument("--iw-samples", type=int, default=0, help="importance samples per test image (0: skip)")
    parser.add_argument("--iw-images", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--quick", action="store_true", help="a few steps of a tiny model; writes nothing")
    parser.add_argument(
        "--allow-dirty",
        action="store_true",
        help="run from a tree with uncommitted changes (the result is marked git_dirty)",
    )
    args = parser.parse_args()
    if not args.quick:
        require_clean_tree(args.allow_dirty)  # the saved result must name a commit holding this code
    if args.quick:
        args.steps, args.num_steps, args.hidden, args.latent = 20, 4, 32, 8
        args.vae_hidden, args.vae_latent, args.test_limit, args.eval_every = 64, 8, 200, 10
        args.train_limit = args.train_limit or 2_000
    if args.threads:
        torch.set_num_threads(args.threads)
    device = attnlib.default_device()
    for variant in args.variant:
        result = run(variant, args, device)
        print(
            f"{variant}: test -ELBO {result['test_nats']:.2f} nats per image "
            f"({result['budget']['steps']} steps, {result['budget']['seconds']:.0f} s)",
            flush=True,
        )
        if args.quick:
            continue
        stored = load_result("draw") or {}
        runs = stored.get("runs", {})
        runs[variant] = {
            **result,
            "paper_nats": PAPER_NATS.get(variant),
            "reduced": args.num_steps != 64 or args.hidden != 256 or args.steps < 100_000,
        }
        save_result("draw", {"runs": runs}, device)


if __name__ == "__main__":
    main()
