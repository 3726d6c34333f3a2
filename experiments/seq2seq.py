#!/usr/bin/env python3
"""Full-size runs behind the sequence-to-sequence chapters.

    .venv/bin/python experiments/seq2seq.py dates      # every score x every window, on dates
    .venv/bin/python experiments/seq2seq.py eng-fra    # RNNencdec vs RNNsearch, BLEU by length

``dates`` trains, with one budget, the decoder without attention, RNNsearch (Bahdanau) and
Luong's three scores (dot, general, concat) with global, local-m and local-p attention, and
scores exact match and alignment accuracy on held-out dates (attnlib result
``seq2seq_dates``).  ``eng-fra`` trains RNNencdec and RNNsearch identically on the Tatoeba
English-French pairs and reports BLEU overall and per source-length bucket, greedy and with
beam search (result ``seq2seq_eng_fra``): the measurement of Bahdanau et al.'s figure 2.

The defaults are a CPU-sized budget; pass larger ``--epochs``/``--hidden`` on a GPU.  Every
setting is stored with the result.
"""

from __future__ import annotations

import argparse
import time

import torch

import attnlib
from attnlib.data.dates import date_batches, date_examples, date_vocabs
from attnlib.data.translation import load_eng_fra, make_translation_data
from attnlib.results import require_clean_tree, save_result
from attnlib.scoring import BilinearScore, ConcatScore, DotScore
from attnlib.seq2seq import (
    DEFAULT_LENGTH_EDGES,
    BahdanauDecoder,
    BiGRUEncoder,
    LuongDecoder,
    PlainDecoder,
    Seq2Seq,
    beam_search,
    bleu_by_length,
    bleu_report,
    corpus_bleu,
    date_scores,
)


def train(model: Seq2Seq, batches, epochs: int, lr: float, device: torch.device) -> float:
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    history = attnlib.fit(
        model,
        optimizer,
        lambda m, b: m.loss(b),
        batches,
        epochs=epochs,
        device=device,
        clip_grad_norm=1.0,
        desc=type(model.decoder).__name__,
    )
    return history.seconds


def run_dates(args: argparse.Namespace, device: torch.device) -> None:
    src_vocab, tgt_vocab = date_vocabs()
    train_set, test_set = date_examples(args.train, seed=0), date_examples(args.test, seed=1)
    A, H = 2 * args.hidden, 2 * args.hidden

    def decoder(name: str):
        if name == "RNNencdec (no attention)":
            return PlainDecoder(len(tgt_vocab), A, args.embed, H, args.hidden)
        if name == "RNNsearch (Bahdanau)":
            return BahdanauDecoder(len(tgt_vocab), A, args.embed, H, args.hidden, args.hidden)
        attention, score = name.split(", ")
        make = {
            "dot": DotScore,
            "general": lambda: BilinearScore(H, A),
            "concat": lambda: ConcatScore(H, A, args.hidden),
        }
        return LuongDecoder(
            len(tgt_vocab), A, make[score](), attention, window=args.window, embed_dim=args.embed, hidden_dim=H
        )

    names = ["RNNencdec (no attention)", "RNNsearch (Bahdanau)"] + [
        f"{attention}, {score}"
        for attention in ("global", "local-m", "local-p")
        for score in ("dot", "general", "concat")
    ]
    rows = {}
    for name in names:
        generator = attnlib.seed_everything(args.seed)
        model = Seq2Seq(BiGRUEncoder(len(src_vocab), args.embed, args.hidden), decoder(name)).to(device)
        seconds = train(
            model,
            lambda generator=generator: date_batches(train_set, src_vocab, tgt_vocab, args.batch, generator),
            args.epochs,
            args.lr,
            device,
        )
        rows[name] = {**date_scores(model, test_set, src_vocab, tgt_vocab), "train_seconds": round(seconds, 1)}
        print(name, {k: round(v, 4) for k, v in rows[name].items()}, flush=True)
    uniform = rows[names[0]]["uniform_alignment"]
    budget = (
        f"{args.train} training dates, {args.epochs} epochs, batch {args.batch}, GRU {args.hidden} per "
        f"direction, window D = {args.window}, seed {args.seed}; {args.test} test dates"
    )
    path = save_result(
        "seq2seq_dates",
        {
            "budget": budget,
            "settings": vars(args),
            "uniform_alignment": uniform,
            "models": {n: {k: v for k, v in r.items() if k != "uniform_alignment"} for n, r in rows.items()},
        },
        device,
    )
    print("wrote", path)


def run_eng_fra(args: argparse.Namespace, device: torch.device) -> None:
    pairs = load_eng_fra(max_len=args.max_len)
    data = make_translation_data(
        pairs,
        valid_fraction=0.02,
        test_fraction=0.05,
        seed=args.seed,
        min_freq=args.min_freq,
        max_vocab=args.max_vocab,
        known_words_only=args.known_words_only,
    )
    print(
        f"{len(data.train)} training pairs, {len(data.test)} test pairs, vocabularies "
        f"{len(data.src_vocab)} / {len(data.tgt_vocab)}",
        flush=True,
    )
    A = 2 * args.hidden
    decoders = {
        "RNNencdec": lambda: PlainDecoder(len(data.tgt_vocab), A, args.embed, A, args.readout, dropout=args.dropout),
        "RNNsearch": lambda: BahdanauDecoder(
            len(data.tgt_vocab), A, args.embed, A, args.hidden, args.readout, dropout=args.dropout
        ),
    }
    models = {}
    for name, make in decoders.items():
        generator = attnlib.seed_everything(args.seed)
        model = Seq2Seq(BiGRUEncoder(len(data.src_vocab), args.embed, args.hidden, dropout=args.dropout), make()).to(
            device
        )
        seconds = train(
            model,
            lambda generator=generator: data.batches("train", args.batch, generator=generator),
            args.epochs,
            args.lr,
            device,
        )
        report = bleu_report(model, data, max_len=args.max_len + 10)
        row = {
            "bleu": report["bleu"],
            "by_length": report["by_length"],
            "train_seconds": round(seconds, 1),
            "parameters": model.num_parameters(),
        }
        if args.beam > 1:  # beam search, sentence by sentence, on the same test set
            hyps = []
            for src, _ in data.test:
                b = data.encode([(src, ["."])])
                hyp = beam_search(
                    model.eval(),
                    b.src[0].to(device),
                    len(src) + 1,
                    beam_size=args.beam,
                    max_len=args.max_len + 10,
                    length_penalty=0.6,
                )
                hyps.append(data.tgt_vocab.decode(hyp.tokens))
            refs = [t for _, t in data.test]
            row["beam"] = {
                "width": args.beam,
                "bleu": corpus_bleu(hyps, refs),
                "by_length": bleu_by_length(hyps, refs, [len(s) for s, _ in data.test], DEFAULT_LENGTH_EDGES),
            }
        models[name] = row
        print(name, round(row["bleu"], 2), [(r["bucket"], round(r["bleu"], 1)) for r in row["by_length"]], flush=True)
    budget = (
        f"{len(data.train)} training pairs (up to {args.max_len} tokens"
        f"{', known words only' if args.known_words_only else ''}), {args.epochs} epochs, batch {args.batch}, "
        f"GRU {args.hidden} per direction, embeddings {args.embed}; greedy decoding on {len(data.test)} test pairs"
    )
    path = save_result("seq2seq_eng_fra", {"budget": budget, "settings": vars(args), "models": models}, device)
    print("wrote", path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="task", required=True)
    dates = sub.add_parser("dates", help="all scores and windows on the date task")
    dates.add_argument("--train", type=int, default=12000)
    dates.add_argument("--test", type=int, default=1000)
    dates.add_argument("--epochs", type=int, default=6)
    dates.add_argument("--batch", type=int, default=64)
    dates.add_argument("--embed", type=int, default=32)
    dates.add_argument("--hidden", type=int, default=64, help="GRU size per direction")
    dates.add_argument("--window", type=int, default=3, help="local attention half width D")
    dates.add_argument("--lr", type=float, default=3e-3)
    eng_fra = sub.add_parser("eng-fra", help="RNNencdec vs RNNsearch on Tatoeba English-French")
    eng_fra.add_argument("--max-len", type=int, default=20)
    eng_fra.add_argument("--min-freq", type=int, default=3)
    eng_fra.add_argument("--max-vocab", type=int, default=None, help="cap each vocabulary (most frequent words)")
    eng_fra.add_argument(
        "--known-words-only",
        action="store_true",
        help="drop pairs with words outside the vocabularies (as the chapters' quick runs do)",
    )
    eng_fra.add_argument("--epochs", type=int, default=4)
    eng_fra.add_argument("--batch", type=int, default=64)
    eng_fra.add_argument("--embed", type=int, default=256)
    eng_fra.add_argument("--hidden", type=int, default=256, help="GRU size per direction")
    eng_fra.add_argument("--readout", type=int, default=256)
    eng_fra.add_argument("--dropout", type=float, default=0.2)
    eng_fra.add_argument("--lr", type=float, default=1e-3)
    eng_fra.add_argument("--beam", type=int, default=0, help="also decode with beam search of this width")
    for p in (dates, eng_fra):
        p.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--allow-dirty",
        action="store_true",
        help="run from a tree with uncommitted changes (the result is marked git_dirty)",
    )
    args = parser.parse_args()
    require_clean_tree(args.allow_dirty)  # the saved result must name a commit holding this code
    device = attnlib.default_device()
    print(f"device: {device}", flush=True)
    start = time.perf_counter()
    (run_dates if args.task == "dates" else run_eng_fra)(args, device)
    print(f"done in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
