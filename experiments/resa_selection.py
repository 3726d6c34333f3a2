"""ReSA's hard selection followed by soft attention, against soft attention alone, on a toy task.

Shen, Zhou, Long, Jiang, Wang and Zhang, *Reinforced Self-Attention Network: a Hybrid of Hard and
Soft Attention for Sequence Modeling*, IJCAI 2018 (arXiv:1801.10296), select tokens with
Bernoulli-sigmoid gates trained by REINFORCE and run a soft attention over the kept tokens only,
trained jointly by back-propagation, with a penalty on the share of kept tokens in the reward.
:class:`attnlib.stochastic.ReinforcedAttention` with ``pooling="attention"`` is that design for one
query. This script compares, on the chapter "Attention as a random variable"'s coloured tables
(8 rows, each a number in [0, 1] and one of 4 colours; the query names a colour) with the answer
changed to *the largest number of the query's colour*:

* ``soft``: the same module's soft scorer over all rows, no gates (the control: the same soft
  attention without the selection);
* ``resa``: gates, then soft attention over the kept rows, reward ``-|error| - lambda * share kept``,
  for ``lambda`` in ``--penalties``;
* ``gates_mean``: the course's simplified gates, kept rows averaged (no soft stage).

Test mean absolute error, share of rows kept, and whether the gates keep the answer's row, at
several step counts of one run (constant learning rate), for several seeds; and rules without
the mechanism (the largest or the mean of all numbers, and the mean of the query colour's numbers,
the best the averaged gates can do).

    .venv/bin/python experiments/resa_selection.py          # attnlib/results/resa_selection.json
    .venv/bin/python experiments/resa_selection.py --quick  # a smoke test, nothing written
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

import attnlib
from attnlib.hard import BaselineNetwork, reinforce_loss
from attnlib.results import require_clean_tree, save_result
from attnlib.stochastic import ReinforcedAttention, keep_share

COLOURS, ROWS = 4, 8
Task = tuple[Tensor, Tensor, Tensor, Tensor, Tensor]


def max_task(n: int, seed: int) -> Task:
    """Query ``(n, 4)``, keys ``(n, 8, 5)`` (colour one-hot and number), values ``(n, 8, 1)`` (the
    numbers), answer ``(n, 1)`` (the largest number of the query's colour), rows of that colour ``(n, 8)``."""
    g = torch.Generator().manual_seed(seed)
    colour = torch.randint(COLOURS, (n, ROWS), generator=g)  # (n, S)
    wanted = torch.randint(COLOURS, (n,), generator=g)  # (n,)
    colour[torch.arange(n), torch.randint(ROWS, (n,), generator=g)] = wanted  # at least one row matches
    numbers = torch.rand(n, ROWS, 1, generator=g)  # (n, S, 1)
    right = (colour == wanted[:, None]).float()  # (n, S)
    answer = numbers[..., 0].masked_fill(right == 0, -1.0).max(dim=1, keepdim=True).values  # (n, 1)
    keys = torch.cat([F.one_hot(colour, COLOURS).float(), numbers], dim=-1)  # (n, S, 5)
    return F.one_hot(wanted, COLOURS).float(), keys, numbers, answer, right


def soft_only(model: ReinforcedAttention, query: Tensor, keys: Tensor, values: Tensor) -> Tensor:
    """The module's soft scorer over every row, no gates: ``(B, Dv)``."""
    assert model.soft is not None
    soft = model.soft
    scores = soft["v"](torch.tanh(soft["q"](query)[:, None, :] + soft["k"](keys))).squeeze(-1)  # (B, S)
    return (scores.softmax(dim=-1)[:, :, None] * values).sum(dim=1)  # (B, Dv)


def evaluate(model: ReinforcedAttention, kind: str, data: Task) -> dict[str, float]:
    query, keys, values, answer, right = data
    model.eval()
    with torch.no_grad():
        if kind == "soft":
            out, gates = soft_only(model, query, keys, values), torch.ones_like(right)
        else:
            result = model(query, keys, values)
            out, gates = result.output, result.gates
    model.train()
    answer_row = (values[..., 0] == answer).float() * right  # (B, S): the answer's row
    return {
        "mae": (out - answer).abs().mean().item(),
        "share_kept": gates.mean().item(),
        "answer_row_kept": ((gates * answer_row).sum(1) > 0).float().mean().item(),
        "precision_colour": ((gates * right).sum() / gates.sum().clamp_min(1)).item(),
    }


def train(kind: str, penalty: float, data: Task, test: Task, checkpoints: list[int], seed: int, batch: int) -> dict:
    attnlib.seed_everything(seed)
    pooling = "mean" if kind == "gates_mean" else "attention"
    model = ReinforcedAttention(COLOURS, COLOURS + 1, hidden_size=16, pooling=pooling)
    baseline = BaselineNetwork(hidden_size=COLOURS)
    optimizer = torch.optim.Adam([*model.parameters(), *baseline.parameters()], lr=0.03)
    g = torch.Generator().manual_seed(seed)
    query, keys, values, answer, _ = data
    scores: dict[int, dict[str, float]] = {}
    for step in range(1, max(checkpoints) + 1):
        idx = torch.randint(len(answer), (batch,), generator=g)
        if kind == "soft":
            loss = F.mse_loss(soft_only(model, query[idx], keys[idx], values[idx]), answer[idx])
        else:
            out = model(query[idx], keys[idx], values[idx], generator=g)
            reward = -(out.output - answer[idx]).abs()[:, 0].detach() - penalty * keep_share(out.gates)  # (B,)
            b = baseline(query[idx])  # (B,)
            loss = reinforce_loss(out.log_prob, reward, b) + F.mse_loss(b, reward)
            if kind == "resa":
                loss = loss + F.mse_loss(out.output, answer[idx])  # the soft stage learns by backpropagation
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step in checkpoints:
            scores[step] = evaluate(model, kind, test)
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--checkpoints", type=int, nargs="+", default=[300, 1000, 3000])
    parser.add_argument("--penalties", type=float, nargs="+", default=[0.0, 0.1])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="a smoke test (tiny budget); writes nothing")
    parser.add_argument("--no-save", action="store_true", help="print the results, write nothing")
    parser.add_argument("--allow-dirty", action="store_true", help="run from a tree with uncommitted changes")
    args = parser.parse_args()
    require_clean_tree(args.allow_dirty or args.quick)  # --quick saves nothing
    if args.quick:
        args.seeds, args.checkpoints = [0], [5, 10]
    torch.set_num_threads(1)
    data, test = max_task(20000, seed=0), max_task(2000, seed=99)
    _, _, values, answer, right = test
    rules = {
        "largest number in the table": (values.max(1).values - answer).abs().mean().item(),
        "mean of the table's numbers": (values.mean(1) - answer).abs().mean().item(),
        "mean of the query colour's numbers": (
            ((right[..., None] * values).sum(1) / right.sum(1, keepdim=True)) - answer
        )
        .abs()
        .mean()
        .item(),
    }
    variants = [("soft", 0.0)] + [("resa", p) for p in args.penalties] + [("gates_mean", 0.0)]
    runs: dict[str, list[dict]] = {}
    start = time.perf_counter()
    for kind, penalty in variants:
        name = f"{kind}_penalty_{penalty:g}" if kind == "resa" else kind
        runs[name] = []
        for seed in args.seeds:
            runs[name].append(train(kind, penalty, data, test, args.checkpoints, seed, args.batch_size))
            last = runs[name][-1][max(args.checkpoints)]
            print(
                f"{name:>18} seed {seed}: "
                + ", ".join(f"{k} {v:.3f}" for k, v in last.items())
                + f" ({time.perf_counter() - start:.0f} s)",
                flush=True,
            )
    summary = {
        name: {
            str(s): {
                f"{k}_{stat}": (statistics.mean if stat == "mean" else statistics.stdev)([r[s][k] for r in per_seed])
                for k in per_seed[0][s]
                for stat in ("mean", "std")
            }
            for s in args.checkpoints
        }
        for name, per_seed in runs.items()
        if len(per_seed) > 1
    }
    print("rules:", {k: round(v, 4) for k, v in rules.items()})
    for name in summary:
        print(
            name,
            {
                s: (round(v["mae_mean"], 4), round(v["mae_std"], 4), round(v["share_kept_mean"], 3))
                for s, v in summary[name].items()
            },
        )
    if args.quick or args.no_save:
        return
    result: dict[str, Any] = {
        "description": "Largest number of the query's colour in 8-row tables: soft attention alone, ReSA-style "
        "gates + masked soft attention (several sparsity penalties), and mean-pooled gates. Test mean absolute "
        "error, share kept, answer row kept, per seed and step count.",
        "budget": {
            "batch_size": args.batch_size,
            "optimizer": "Adam, constant learning rate 0.03",
            "train_tables": 20000,
            "test_tables": 2000,
            "checkpoints": args.checkpoints,
            "seeds": args.seeds,
            "torch_threads": 1,
            "wall_seconds": round(time.perf_counter() - start),
        },
        "rules": rules,
        "runs": runs,
        "summary": summary,
    }
    print(f"wrote {save_result('resa_selection', result)}")


if __name__ == "__main__":
    main()
