"""Show, Attend and Tell on captioned digit scenes: the gate and regulariser ablations, soft vs hard.

Xu et al. (2015, arXiv:1502.03044) on :mod:`attnlib.data.digit_captions`: scenes of 2 to 4
MNIST digits whose captions name them in reading order.  For each seed the encoder is
trained once as a digit classifier on single-digit cells and frozen (the paper's VGG
encoder was pretrained and fixed too); then every variant's decoder is trained on the same
features and batches:

* ``soft``: soft attention with the scalar gate, ``lambda = 0`` (no doubly stochastic penalty);
* ``soft, no gate``: ``beta_t = 1``;
* ``soft, lambda=...``: the doubly stochastic regulariser at the given weights;
* ``hard``: hard attention trained with REINFORCE (section 4.1), gate as configured.

For each variant the test scenes give the exact match of greedy captions, BLEU, the
localisation score of the maps (share of attention inside the named digit's box, arg-max
hit rate, and their uniform chance levels), the mean gate on digit and relation words,
the entropy of the maps and the coverage ``sum_t alpha_ti`` statistics the regulariser acts
on, with the coverage maps of the first ``--coverage-scenes`` test scenes.  Results go to
``attnlib/results/show_attend_tell.json``.  ``--merge`` adds the seeds of this run to the
stored result (the budget must be the same), so that seeds can be added one run at a time;
``seed_provenance`` then names the commit and command of every seed.

Example::

    python experiments/show_attend_tell.py --steps 1500 --seeds 0 1
    python experiments/show_attend_tell.py --steps 1500 --seeds 2 --merge    # a third seed
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict
from typing import Any

import torch

import attnlib
from attnlib.captioning import (
    DigitClassifier,
    ShowAttendTell,
    ShowAttendTellConfig,
    caption_report,
    doubly_stochastic_penalty,
    train_captioner,
)
from attnlib.data import CAPTION_VOCAB, DIGIT_WORDS, digit_caption_scenes, digit_cells, load_mnist
from attnlib.results import load_result, provenance, require_clean_tree, save_result

RELATION_IDS = [CAPTION_VOCAB.index(w) for w in ("left", "of", "above")]
DIGIT_IDS = [CAPTION_VOCAB.index(w) for w in DIGIT_WORDS]


def variants(lambdas: list[float]) -> dict[str, dict[str, Any]]:
    table: dict[str, dict[str, Any]] = {
        "soft": dict(attention="soft", gate=True, doubly_stochastic_weight=0.0),
        "soft, no gate": dict(attention="soft", gate=False, doubly_stochastic_weight=0.0),
    }
    for lam in lambdas:
        table[f"soft, lambda={lam:g}"] = dict(attention="soft", gate=True, doubly_stochastic_weight=lam)
    table["hard"] = dict(attention="hard", gate=True, doubly_stochastic_weight=0.0)
    return table


@torch.no_grad()
def map_statistics(model: ShowAttendTell, features: torch.Tensor, captions: torch.Tensor) -> dict[str, float]:
    out = model(features, captions, location="expectation" if model.config.attention == "hard" else None)
    mask = captions != 0  # (N, T)
    entropy = -(out.alphas * out.alphas.clamp_min(1e-12).log()).sum(-1)  # (N, T)
    coverage = (out.alphas * mask[:, :, None]).sum(1)  # (N, L)
    digit = torch.isin(captions, torch.tensor(DIGIT_IDS))
    relation = torch.isin(captions, torch.tensor(RELATION_IDS))
    return {
        "map_entropy": float(entropy[mask].mean()),
        "uniform_entropy": float(torch.log(torch.tensor(float(out.alphas.shape[-1])))),
        "penalty": float(doubly_stochastic_penalty(out.alphas, mask)),
        "coverage_max": float(coverage.max(-1).values.mean()),
        "beta_digit_words": float(out.betas[digit].mean()),
        "beta_relation_words": float(out.betas[relation].mean()),
    }


@torch.no_grad()
def coverage_maps(model: ShowAttendTell, features: torch.Tensor, captions: torch.Tensor) -> list[list[float]]:
    """``sum_t alpha_ti`` over each caption's words (teacher-forced): one ``L``-list per scene."""
    out = model(features, captions, location="expectation" if model.config.attention == "hard" else None)
    mask = captions != 0  # (N, T)
    coverage = (out.alphas * mask[:, :, None]).sum(1)  # (N, L)
    return [[round(v, 4) for v in row] for row in coverage.tolist()]


BUDGET_KEYS = ("steps", "batch_size", "train_scenes", "test_scenes", "pretrain_steps")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--train-scenes", type=int, default=20000)
    parser.add_argument("--test-scenes", type=int, default=2000)
    parser.add_argument("--pretrain-steps", type=int, default=600)
    parser.add_argument("--lambdas", type=float, nargs="*", default=[0.1, 1.0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--only", nargs="*", default=None, help="train only these variants")
    parser.add_argument("--coverage-scenes", type=int, default=3, help="store the coverage maps of this many scenes")
    parser.add_argument("--merge", action="store_true", help="add these seeds to the stored result (same budget)")
    parser.add_argument("--allow-dirty", action="store_true")
    args = parser.parse_args()
    require_clean_tree(args.allow_dirty)
    stored = load_result("show_attend_tell") if args.merge else None
    if args.merge and stored is None:
        raise SystemExit("--merge: no stored result to merge into")
    budget = {
        "steps": args.steps,
        "batch_size": 64,
        "train_scenes": args.train_scenes,
        "test_scenes": args.test_scenes,
        "pretrain_steps": args.pretrain_steps,
        "seeds": args.seeds,
    }
    if stored is not None and any(stored["budget"][k] != budget[k] for k in BUDGET_KEYS):
        raise SystemExit(f"--merge: the stored budget {stored['budget']} differs from this run's {budget}")
    device = attnlib.default_device()
    if device.type == "cpu":
        torch.set_num_threads(1)
    train_digits, train_labels = load_mnist("train")
    test_digits, test_labels = load_mnist("test")
    train = digit_caption_scenes(train_digits, train_labels, args.train_scenes, seed=0)
    test = digit_caption_scenes(test_digits, test_labels, args.test_scenes, seed=0, split_code=1)
    single = digit_caption_scenes(train_digits, train_labels, 10000, seed=1, min_digits=1, max_digits=1)
    cells = digit_cells(single)
    table = variants(args.lambdas)
    if args.only:
        table = {name: spec for name, spec in table.items() if name in args.only}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in table}
    for seed in args.seeds:
        generator = attnlib.seed_everything(seed)
        base = ShowAttendTell(ShowAttendTellConfig())
        classifier = attnlib.train_classifier(
            DigitClassifier(base.encoder),
            cells,
            single.labels[:, 0],
            steps=args.pretrain_steps,
            lr=1e-2,
            generator=generator,
            device=device,
        )
        encoder_state = {k: v.clone() for k, v in base.encoder.state_dict().items()}
        with torch.no_grad():
            encoder = base.encoder.to(device).eval()
            train_features = torch.cat(
                [encoder(train.images[i : i + 1000].to(device)) for i in range(0, len(train.images), 1000)]
            )
            test_features = encoder(test.images.to(device))
        cell_accuracy = attnlib.accuracy(classifier, digit_cells(test), test.labels[:, 0], device=device)
        for name, spec in table.items():
            generator = attnlib.seed_everything(seed)
            config = ShowAttendTellConfig(attention=spec["attention"], gate=spec["gate"])
            model = ShowAttendTell(config)
            model.encoder.load_state_dict(encoder_state)
            model.encoder.requires_grad_(False)
            model.to(device)
            start = time.perf_counter()
            log = train_captioner(
                model,
                train_features,
                train.captions.to(device),
                train.lengths.to(device),
                steps=args.steps,
                doubly_stochastic_weight=spec["doubly_stochastic_weight"],
                generator=generator,
                show_progress=False,
            )
            seconds = time.perf_counter() - start
            captions = test.captions.to(device)
            report = caption_report(model, test_features, test)
            entry = {
                "seed": seed,
                "config": asdict(config),
                "doubly_stochastic_weight": spec["doubly_stochastic_weight"],
                "encoder_cell_accuracy": cell_accuracy,
                "train_seconds": round(seconds, 1),
                **{k: round(v, 4) if isinstance(v, float) else v for k, v in report.items()},
                **{k: round(v, 4) for k, v in map_statistics(model, test_features, captions).items()},
                "final_likelihood": round(sum(log["likelihood"][-100:]) / 100, 4),
            }
            entry["coverage_maps"] = coverage_maps(
                model, test_features[: args.coverage_scenes], captions[: args.coverage_scenes]
            )
            if config.attention == "hard":
                entry["report_expectation"] = {
                    k: round(v, 4) if isinstance(v, float) else v
                    for k, v in caption_report(model, test_features, test, location="expectation").items()
                }
            runs[name].append(entry)
            print(
                f"seed {seed} {name:>18}: exact {report['exact_match']:.3f}, BLEU {report['bleu']:.1f}, "
                f"share {report['share']:.3f} (uniform {report['uniform_share']:.3f}), {seconds:.0f} s",
                flush=True,
            )
    this_run = provenance(device)
    seed_provenance = {
        str(seed): {k: this_run[k] for k in ("git_commit", "git_dirty", "command", "date")} for seed in args.seeds
    }
    if stored is not None:
        old_seeds = [s for s in stored["budget"]["seeds"] if s not in args.seeds]
        old_provenance = stored.get("seed_provenance") or {
            str(s): {k: stored["provenance"][k] for k in ("git_commit", "git_dirty", "command", "date")}
            for s in old_seeds
        }
        for name in runs:
            runs[name] = [r for r in stored["runs"].get(name, []) if r["seed"] in old_seeds] + runs[name]
        seed_provenance = {**{str(s): old_provenance[str(s)] for s in old_seeds}, **seed_provenance}
        budget["seeds"] = old_seeds + args.seeds
    save_result(
        "show_attend_tell",
        {"budget": budget, "seed_provenance": seed_provenance, "runs": runs},
        device=device,
    )


if __name__ == "__main__":
    main()
