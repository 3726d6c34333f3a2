#!/usr/bin/env python3
"""Full-size run behind the Transformer chapter: Transformer vs RNNsearch on English-French.

    .venv/bin/python experiments/transformer.py                 # GPU-sized defaults
    .venv/bin/python experiments/transformer.py --epochs 2 --train-pairs 12000   # the chapter's budget

Both models are trained on the same Tatoeba English-French pairs, with the same number
of epochs and batch size, on :func:`attnlib.default_device`: RNNsearch (the BiGRU encoder
and Bahdanau decoder of :mod:`attnlib.seq2seq`) with Adam at a constant learning rate, the
Transformer (:class:`attnlib.transformer.model.Transformer`) with Adam and the paper's
warm-up then inverse-square-root schedule (Vaswani et al., 2017, eq. 3).  BLEU is computed
by :func:`attnlib.seq2seq.evaluation.bleu_report` (greedy decoding) for both, overall and per
source-length bucket, and written with the training times and parameter counts as the
attnlib result ``transformer``.

A comparison is only as fair as the tuning of both sides.  ``--rnn-lrs`` and
``--transformer-lrs`` give each model the same small learning-rate sweep: every rate is
trained with the same budget, scored by BLEU on the validation split, and the best one is
scored on the test split; the sweep is recorded in the result.  For example (about an
hour on one CPU thread)::

    .venv/bin/python experiments/transformer.py --train-pairs 40000 --epochs 4 --batch 64 --rnn-hidden 64 \
        --d-model 64 --layers 2 --d-ff 256 --warmup 500 --rnn-lrs 1e-3 3e-3 5e-3 --transformer-lrs 1e-3 3e-3 6e-3
"""

from __future__ import annotations

import argparse
import time

import torch

import attnlib
from attnlib.data.translation import load_eng_fra, make_translation_data
from attnlib.results import require_clean_tree, save_result
from attnlib.seq2seq import BahdanauDecoder, BiGRUEncoder, Seq2Seq, bleu_report
from attnlib.transformer.model import Transformer, TransformerConfig


def train(model: Seq2Seq, data, args: argparse.Namespace, device: torch.device, lr: float, warmup: int = 0) -> dict:
    """Plain loop: Adam at ``lr`` (the peak rate with a warm-up), gradient clipping; returns time and losses."""
    generator = attnlib.seed_everything(args.seed)
    model.to(device).train()
    if warmup:  # lr = peak * min(step / warmup, sqrt(warmup / step))
        optimizer = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.98), eps=1e-9)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: min((step + 1) / warmup, (warmup / (step + 1)) ** 0.5)
        )
    else:
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        schedule = None
    losses, steps = [], 0
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for epoch in range(args.epochs):
        total, count = 0.0, 0
        for batch in data.batches("train", args.batch, generator=generator):
            loss = model.loss(batch.to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            if schedule is not None:
                schedule.step()
            total, count, steps = total + loss.item(), count + 1, steps + 1
        losses.append(round(total / count, 4))
        print(f"  epoch {epoch + 1}: mean loss {losses[-1]:.3f}", flush=True)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return {"train_seconds": round(time.perf_counter() - start, 1), "epoch_losses": losses, "steps": steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-len", type=int, default=20, help="longest sentence in tokens")
    parser.add_argument("--max-vocab", type=int, default=8000, help="cap each vocabulary")
    parser.add_argument("--train-pairs", type=int, default=None, help="train on a random subset of this size")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--rnn-hidden", type=int, default=256, help="RNNsearch GRU size per direction")
    parser.add_argument("--rnn-lr", type=float, default=1e-3)
    parser.add_argument(
        "--rnn-lrs",
        type=float,
        nargs="+",
        default=None,
        help="learning rates to sweep for RNNsearch, best on the validation split (default: --rnn-lr)",
    )
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--layers", type=int, default=3, help="encoder and decoder layers each")
    parser.add_argument("--d-ff", type=int, default=1024)
    parser.add_argument("--post-norm", action="store_true", help="the paper's post-norm (default: pre-norm)")
    parser.add_argument("--transformer-lr", type=float, default=1e-3, help="peak learning rate after warm-up")
    parser.add_argument(
        "--transformer-lrs",
        type=float,
        nargs="+",
        default=None,
        help="peak learning rates to sweep for the Transformer, best on the validation split "
        "(default: --transformer-lr)",
    )
    parser.add_argument("--warmup", type=int, default=2000, help="warm-up steps of the Transformer's schedule")
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--allow-dirty",
        action="store_true",
        help="run from a tree with uncommitted changes (the result is marked git_dirty)",
    )
    args = parser.parse_args()
    require_clean_tree(args.allow_dirty)  # the saved result must name a commit holding this code
    device = attnlib.default_device()
    print(f"device: {device}", flush=True)

    pairs = load_eng_fra(max_len=args.max_len)
    data = make_translation_data(
        pairs,
        valid_fraction=0.02,
        test_fraction=0.05,
        seed=args.seed,
        min_freq=3,
        max_vocab=args.max_vocab,
        known_words_only=True,
    )
    if args.train_pairs is not None:
        subset = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(args.seed))[: args.train_pairs]
        data.train = [data.train[i] for i in subset.tolist()]
    print(
        f"{len(data.train)} training pairs, {len(data.test)} test pairs, vocabularies "
        f"{len(data.src_vocab)} / {len(data.tgt_vocab)}",
        flush=True,
    )

    def rnnsearch() -> Seq2Seq:
        H = args.rnn_hidden
        return Seq2Seq(
            BiGRUEncoder(len(data.src_vocab), H, H, dropout=args.dropout),
            BahdanauDecoder(len(data.tgt_vocab), 2 * H, H, 2 * H, H, H, dropout=args.dropout),
        )

    def transformer() -> Transformer:
        return Transformer(
            TransformerConfig(
                len(data.src_vocab),
                len(data.tgt_vocab),
                d_model=args.d_model,
                num_heads=args.heads,
                num_encoder_layers=args.layers,
                num_decoder_layers=args.layers,
                d_ff=args.d_ff,
                dropout=args.dropout,
                norm_first=not args.post_norm,
                max_len=args.max_len + 16,
            )
        )

    models = {}
    rnn_lrs = args.rnn_lrs or [args.rnn_lr]
    transformer_lrs = args.transformer_lrs or [args.transformer_lr]
    for name, make, warmup, rates in (
        ("RNNsearch", rnnsearch, 0, rnn_lrs),
        ("Transformer", transformer, args.warmup, transformer_lrs),
    ):
        sweep, best = [], None
        for lr in rates:  # one rate: no sweep, and no validation decoding
            attnlib.seed_everything(args.seed)
            model = make()
            print(f"{name}: {model.num_parameters():,} parameters, learning rate {lr:g}", flush=True)
            row = train(model, data, args, device, lr=lr, warmup=warmup)
            row["learning_rate"] = lr
            if len(rates) > 1:
                model.eval()
                row["valid_bleu"] = bleu_report(model, data, split="valid", max_len=args.max_len + 10)["bleu"]
                sweep.append(
                    {"learning_rate": lr, "valid_bleu": row["valid_bleu"], "train_seconds": row["train_seconds"]}
                )
                print(f"  validation BLEU {row['valid_bleu']:.2f}", flush=True)
            if best is None or row.get("valid_bleu", 0.0) > best[1].get("valid_bleu", 0.0):
                best = (model, row)
        model, row = best
        if sweep:
            row["lr_sweep"] = sweep
        model.eval()
        start = time.perf_counter()
        report = bleu_report(model, data, max_len=args.max_len + 10)
        row.update(
            bleu=report["bleu"],
            by_length=report["by_length"],
            parameters=model.num_parameters(),
            decode_seconds=round(time.perf_counter() - start, 1),
        )
        models[name] = row
        print(
            name,
            round(row["bleu"], 2),
            [(r["bucket"], round(r["bleu"], 1)) for r in row["by_length"]],
            f"train {row['train_seconds']} s",
            flush=True,
        )
    swept = ", best of each on the validation split" if len(rnn_lrs) > 1 or len(transformer_lrs) > 1 else ""
    budget = (
        f"{len(data.train)} training pairs (up to {args.max_len} tokens, known words only, vocabularies "
        f"{len(data.src_vocab)}/{len(data.tgt_vocab)}), {args.epochs} epochs, batch {args.batch} for both; "
        f"RNNsearch GRU {args.rnn_hidden} per direction; Transformer {args.layers}+{args.layers} layers, "
        f"d_model {args.d_model}, {args.heads} heads, d_ff {args.d_ff}, "
        f"{'post' if args.post_norm else 'pre'}-norm; learning rates {rnn_lrs} (RNNsearch) and "
        f"{transformer_lrs} (Transformer peak){swept}; "
        f"greedy decoding on {len(data.test)} test pairs"
    )
    path = save_result("transformer", {"budget": budget, "settings": vars(args), "models": models}, device)
    print("wrote", path)


if __name__ == "__main__":
    main()
