"""Deng et al. (2018)'s comparison on a lookup task where every alignment can be enumerated.

Deng, Kim, Chiu, Guo and Rush, *Latent Alignment and Variational Attention*, NeurIPS 2018
(arXiv:1807.03756), compare ways of training one attention model: soft attention; the exact
marginal likelihood over a categorical alignment, ``log sum_z p(z) p(y | v_z)``; "hard"
attention, REINFORCE with samples from the prior ``p(z)`` on ``E_p[log p(y | v_z)]``; and
variational attention, the ELBO with an inference network ``q(z | x, y)`` (enumerated, or
sampled with the score function, or relaxed with Gumbel-softmax). Their finding: the exact
marginal likelihood beats soft attention, hard attention loses that gain, and variational
attention keeps most of it.

The task (the chapter "Attention as a random variable" runs the same code for fewer steps):
tables of ``S = 6`` rows, each with a key symbol (one of 8) and a value symbol (one of 16,
given to the model as two one-hot coordinates on a 4 x 4 grid). The query names a key. In half
of the tables that key is in two rows ("twins"), and the answer is the value of one of them,
chosen at random: the right prediction is a mixture of two values. A soft-attention model
sees the average of the two rows' codes, which the average of two other values' codes can
equal, so it cannot represent that mixture; a latent alignment can. Every variant has the
same prior (bilinear in query and key) and predictor (a linear layer from one value's code to
the answer's logits). The test negative log-likelihood is the exact marginal for the latent
variants and the model's own for soft attention, recorded along one run at several step
counts (constant learning rate, so a checkpoint is what a shorter run would reach), for
several seeds. Trivial baselines: a uniform guess over the 16 answers, a uniform guess over
the table's six values (no attention), and the floor, a uniform guess over the values in the
rows holding the query's key (the true answer distribution).

    .venv/bin/python experiments/variational_alignment.py          # attnlib/results/variational_alignment.json
    .venv/bin/python experiments/variational_alignment.py --quick  # a smoke test, nothing written
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import attnlib
from attnlib.results import require_clean_tree, save_result
from attnlib.stochastic import VariationalAttention, elbo_surrogate

ROWS, KEYS, GRID = 6, 8, 4
ANSWERS = GRID * GRID
VARIANTS = ("soft", "marginal", "hard", "var_enum", "var_score", "var_gumbel")
LABELS = {
    "soft": "soft attention",
    "marginal": "exact marginal likelihood",
    "hard": "hard attention (REINFORCE from the prior)",
    "var_enum": "variational, enumerated ELBO",
    "var_score": "variational, score function (samples from q)",
    "var_gumbel": "variational, Gumbel-softmax",
}
Task = tuple[Tensor, Tensor, Tensor, Tensor, Tensor]


def twin_task(n: int, seed: int, twins: float = 0.5) -> Task:
    """``n`` tables: query ``(n, 8)``, keys ``(n, 6, 8)``, value codes ``(n, 6, 8)``, answer ``(n,)``,
    and the rows holding the query's key ``(n, 6)`` (bool). A share ``twins`` of the tables holds
    the query's key in two rows; the answer is the value of one of them, at random."""
    g = torch.Generator().manual_seed(seed)
    symbols = torch.rand(n, KEYS, generator=g).argsort(dim=1)  # (n, 8): a random order of the key symbols
    keys = symbols[:, :ROWS].clone()  # (n, S), all different so far
    values = torch.randint(ANSWERS, (n, ROWS), generator=g)  # (n, S)
    row = torch.randint(ROWS, (n,), generator=g)  # (n,) the row whose value is the answer
    other = (row + torch.randint(1, ROWS, (n,), generator=g)) % ROWS  # (n,) a different row
    twin = torch.rand(n, generator=g) < twins  # (n,)
    keys[twin, other[twin]] = keys[twin, row[twin]]  # the twin row gets the same key
    query = keys[torch.arange(n), row]  # (n,)
    answer = values[torch.arange(n), row]  # (n,)
    code = torch.cat([F.one_hot(values // GRID, GRID), F.one_hot(values % GRID, GRID)], -1).float()  # (n, S, 8)
    return F.one_hot(query, KEYS).float(), F.one_hot(keys, KEYS).float(), code, answer, keys == query[:, None]


class AlignmentModel(nn.Module):
    """Prior ``p(z | query, keys)`` and posterior (:class:`VariationalAttention`), and a linear readout."""

    def __init__(self) -> None:
        super().__init__()
        self.attention = VariationalAttention(KEYS, KEYS, 2 * GRID, ANSWERS)
        self.readout = nn.Linear(2 * GRID, ANSWERS)

    def log_likelihood(self, values: Tensor, answer: Tensor) -> Callable[[Tensor], Tensor]:
        """Alignment weights ``z`` ``(B, S)`` -> ``log p(y | sum_i z_i v_i)`` ``(B,)``."""
        return lambda z: self.readout((z[:, :, None] * values).sum(1)).log_softmax(-1).gather(1, answer[:, None])[:, 0]

    def marginal_nll(self, query: Tensor, keys: Tensor, values: Tensor, answer: Tensor) -> Tensor:
        """``-log sum_z p(z) p(y | v_z)`` ``(B,)``, exact."""
        prior = self.attention.prior_logits(query, keys).log_softmax(-1)  # (B, S)
        per_row = self.readout(values).log_softmax(-1)  # (B, S, answers)
        per_row = per_row.gather(2, answer[:, None, None].expand(-1, values.shape[1], 1))[..., 0]  # (B, S)
        return -(prior + per_row).logsumexp(-1)


def loss_of(model: AlignmentModel, kind: str, batch: Task, g: torch.Generator) -> Tensor:
    query, keys, values, answer, _ = batch
    p_logits = model.attention.prior_logits(query, keys)  # (B, S)
    log_lik = model.log_likelihood(values, answer)
    if kind == "soft":
        return -log_lik(p_logits.softmax(-1)).mean()
    if kind == "marginal":
        return model.marginal_nll(query, keys, values, answer).mean()
    if kind == "hard":  # REINFORCE on E_p[log p(y | v_z)], samples from the prior, no inference network
        return elbo_surrogate(p_logits, p_logits, log_lik, estimator="score_function", num_samples=2, generator=g).loss
    q_logits = model.attention.posterior_logits(query, keys, values, F.one_hot(answer, ANSWERS).float())
    all_options: dict[str, dict[str, Any]] = {
        "var_enum": {"estimator": "exact"},
        "var_score": {"estimator": "score_function", "num_samples": 2},
        "var_gumbel": {"estimator": "gumbel", "num_samples": 2, "tau": 0.5},
    }
    return elbo_surrogate(q_logits, p_logits, log_lik, generator=g, **all_options[kind]).loss


def evaluate(model: AlignmentModel, kind: str, data: Task) -> dict[str, float]:
    query, keys, values, answer, match = data
    with torch.no_grad():
        p = model.attention.prior_logits(query, keys).softmax(-1)  # (B, S)
        if kind == "soft":
            nll = -model.log_likelihood(values, answer)(p).mean().item()
        else:
            nll = model.marginal_nll(query, keys, values, answer).mean().item()
        aligned = match.gather(1, p.argmax(-1)[:, None]).float().mean().item()
        on_key = (p * match).sum(-1).mean().item()
    return {"nll": nll, "aligned": aligned, "prior_mass_on_key_rows": on_key}


def train(kind: str, train_set: Task, test_set: Task, checkpoints: list[int], seed: int, lr: float, batch: int) -> dict:
    """One run; the test scores at each step count in ``checkpoints``, and the seconds per step."""
    attnlib.seed_everything(seed)
    model = AlignmentModel()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    scores: dict[int, dict[str, float]] = {}
    start = time.perf_counter()
    for step in range(1, max(checkpoints) + 1):
        idx = torch.randint(len(train_set[3]), (batch,), generator=g)
        loss = loss_of(model, kind, tuple(t[idx] for t in train_set), g)  # type: ignore[arg-type]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step in checkpoints:
            scores[step] = evaluate(model, kind, test_set)
    return {"scores": scores, "seconds_per_step": (time.perf_counter() - start) / max(checkpoints)}


def baselines(data: Task) -> dict[str, float]:
    """NLLs of rules without the mechanism, and the floor (the true answer distribution)."""
    _, _, code, answer, match = data
    values = code[..., :GRID].argmax(-1) * GRID + code[..., GRID:].argmax(-1)  # (n, S)
    same = (values == answer[:, None]).float()  # (n, S)
    table = -(same.mean(1)).log().mean().item()  # uniform over the table's rows
    floor = -((same * match).sum(1) / match.sum(1)).log().mean().item()  # uniform over the key's rows
    return {"uniform over the 16 answers": math.log(ANSWERS), "uniform over the table's values": table, "floor": floor}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--checkpoints", type=int, nargs="+", default=[100, 300, 1000, 3000])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--train-tables", type=int, default=8192)
    parser.add_argument("--test-tables", type=int, default=2000)
    parser.add_argument("--lr", type=float, default=0.05, help="Adam, constant")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="a smoke test (tiny budget); writes nothing")
    parser.add_argument("--no-save", action="store_true", help="print the results, write nothing")
    parser.add_argument("--allow-dirty", action="store_true", help="run from a tree with uncommitted changes")
    args = parser.parse_args()
    require_clean_tree(args.allow_dirty or args.quick)  # a saved result must name a commit holding this code
    if args.quick:
        args.seeds, args.checkpoints, args.train_tables, args.test_tables = [0], [5, 10], 256, 200
    torch.set_num_threads(1)
    train_set, test_set = twin_task(args.train_tables, seed=0), twin_task(args.test_tables, seed=1)
    base = baselines(test_set)
    runs: dict[str, list[dict]] = {}
    start = time.perf_counter()
    for kind in args.variants:
        runs[kind] = []
        for seed in args.seeds:
            runs[kind].append(train(kind, train_set, test_set, args.checkpoints, seed, args.lr, args.batch_size))
            last = runs[kind][-1]["scores"][max(args.checkpoints)]
            print(
                f"{kind:>10} seed {seed}: test NLL {last['nll']:.4f} ({time.perf_counter() - start:.0f} s)", flush=True
            )
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for kind, per_seed in runs.items():
        summary[kind] = {}
        for step in args.checkpoints:
            nlls = [r["scores"][step]["nll"] for r in per_seed]
            summary[kind][str(step)] = {
                "nll_mean": statistics.mean(nlls),
                "nll_std": statistics.stdev(nlls) if len(nlls) > 1 else 0.0,
                "aligned_mean": statistics.mean(r["scores"][step]["aligned"] for r in per_seed),
            }
    print("baselines:", {k: round(v, 4) for k, v in base.items()})
    for kind in runs:
        print(
            f"{LABELS[kind]:<48}",
            "  ".join(
                f"{s}: {summary[kind][str(s)]['nll_mean']:.3f} +- {summary[kind][str(s)]['nll_std']:.3f}"
                for s in args.checkpoints
            ),
        )
    if args.quick or args.no_save:
        return
    result: dict[str, Any] = {
        "description": "Deng et al. (2018)'s comparison on the twin-key lookup task: test NLL (exact marginal "
        "for the latent variants, the model's own for soft attention) per variant, seed and step count.",
        "budget": {
            "train_tables": args.train_tables,
            "test_tables": args.test_tables,
            "batch_size": args.batch_size,
            "optimizer": f"Adam, constant learning rate {args.lr}",
            "checkpoints": args.checkpoints,
            "seeds": args.seeds,
            "torch_threads": 1,
            "wall_seconds": round(time.perf_counter() - start),
        },
        "labels": LABELS,
        "baselines": base,
        "runs": {k: [{"seed": s, **r} for s, r in zip(args.seeds, v)] for k, v in runs.items()},
        "summary": summary,
    }
    print(f"wrote {save_result('variational_alignment', result)}")


if __name__ == "__main__":
    main()
