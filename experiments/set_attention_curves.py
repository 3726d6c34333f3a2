"""Accuracy against training steps, several seeds, for the families chapter's two logical tasks.

The chapter (``book/part5/attention_families.ipynb``) trains its set and pointer-chasing models
for a few hundred steps; a variant that loses there may only be slower.  This script trains the
chapter's models (same data, sizes, optimiser, learning rate and batch size; the task and model
definitions below are copied from the chapter's cells) for several budgets, each budget a fresh
run with its own one-cycle schedule, and records every seed's test accuracy:

* **pair task** (Set Transformer, Lee et al. 2019, arXiv:1810.00825): four one-hot digits, "does
  the set hold two equal ones?"; ``PMA only`` (no set attention block) against ``SAB + PMA``.
* **pointer chasing** (sequential attention, :class:`attnlib.logical.SequentialAttention`): six
  key -> value pairs and a query key, answer ``v(v(q))``; one hop, two hops, and a *wide* one-round
  control: one multi-head attention (8 heads) by the query's embedding over the pairs, read out by
  an MLP over ``[query; read]``, which can see the query and eight reads at once.

Run from the repository root (a few minutes on one CPU core):

    .venv/bin/python experiments/set_attention_curves.py            # writes attnlib/results/set_attention_curves.json
    .venv/bin/python experiments/set_attention_curves.py --quick    # a smoke test, nothing written
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import attnlib
from attnlib.logical import SequentialAttention, SetTransformer, SetTransformerConfig
from attnlib.results import require_clean_tree, save_result
from attnlib.train import minibatches
from attnlib.transformer import MultiHeadAttention


def train(
    model: nn.Module,
    loss_fn: Callable[..., Tensor],
    tensors: tuple[Tensor, ...],
    steps: int,
    *,
    lr: float,
    seed: int,
    batch_size: int = 64,
) -> nn.Module:
    """The chapter's ``train``: Adam with a one-cycle schedule over shuffled minibatches."""
    generator = attnlib.seed_everything(seed)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    step = 0
    while step < steps:
        for batch in minibatches(*tensors, batch_size=batch_size, generator=generator, drop_last=True):
            loss = loss_fn(model, *batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            step += 1
            if step == steps:
                break
    return model.eval()


def digit_sets(n: int, seed: int, size: int = 4) -> tuple[Tensor, Tensor]:
    """One-hot digit sets ``(n, size, 10)`` and whether each holds two equal digits ``(n,)``."""
    tokens = torch.randint(10, (n, size), generator=torch.Generator().manual_seed(seed))
    has_pair = torch.tensor([len(set(row.tolist())) < size for row in tokens]).long()
    return F.one_hot(tokens, 10).float(), has_pair


def pointer_sets(n: int, seed: int, size: int = 6) -> tuple[Tensor, ...]:
    """``keys, values (n, size)``, ``query (n,)``, ``answer (n,)``, ``second (n,)`` as in the chapter."""
    g = torch.Generator().manual_seed(seed)
    keys = torch.stack([torch.randperm(10, generator=g)[:size] for _ in range(n)])
    values = keys.gather(1, torch.randint(size, (n, size), generator=g))
    rows = torch.arange(n)
    first = torch.randint(size, (n,), generator=g)
    second = (keys == values[rows, first][:, None]).float().argmax(1)
    return keys, values, keys[rows, first], values[rows, second], second


class PointerChaser(nn.Module):
    """The chapter's model: digit embeddings, ``hops`` hops of sequential attention, a linear readout."""

    def __init__(self, hops: int, dim: int = 32) -> None:
        super().__init__()
        self.key, self.value = nn.Embedding(10, dim), nn.Embedding(10, dim)
        self.attend = SequentialAttention(dim, num_hops=hops)
        self.out = nn.Linear(dim, 10)

    def forward(self, keys: Tensor, values: Tensor, query: Tensor) -> Tensor:
        read, _ = self.attend(self.key(query), self.key(keys), self.value(values))
        return self.out(read)  # (B, 10)


class WideLookup(nn.Module):
    """One round of ``heads``-head attention by the query over the pairs; an MLP reads ``[query; read]``."""

    def __init__(self, heads: int = 8, dim: int = 64, hidden: int = 128) -> None:
        super().__init__()
        self.key, self.value = nn.Embedding(10, dim), nn.Embedding(10, dim)
        self.attend = MultiHeadAttention(dim, heads)
        self.out = nn.Sequential(nn.Linear(2 * dim, hidden), nn.ReLU(), nn.Linear(hidden, 10))

    def forward(self, keys: Tensor, values: Tensor, query: Tensor) -> Tensor:
        q = self.key(query)  # (B, D)
        read, _ = self.attend(q[:, None], self.key(keys), self.value(values))  # (B, 1, D)
        return self.out(torch.cat([q, read[:, 0]], dim=-1))  # (B, 10)


def summary(accuracies: list[float]) -> dict[str, Any]:
    return {
        "accuracy": accuracies,
        "mean": statistics.fmean(accuracies),
        "sd": statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny budgets, one seed, nothing written")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--allow-dirty", action="store_true")
    args = parser.parse_args()
    if not args.quick:
        require_clean_tree(args.allow_dirty)
    torch.set_num_threads(1)
    seeds = list(range(1 if args.quick else args.seeds))
    started = time.perf_counter()

    x_set, pair_train = digit_sets(4000, 0)
    x_set_test, pair_test = digit_sets(1000, 1)
    set_models = {"PMA only": 0, "SAB + PMA": 1}
    set_budgets = {"PMA only": [100, 300, 1000, 3000, 10000], "SAB + PMA": [100, 300, 1000, 3000]}
    pair: dict[str, Any] = {"majority": max(pair_test.float().mean().item(), 1 - pair_test.float().mean().item())}
    for name, num_sab in set_models.items():
        pair[name] = {}
        for steps in [20, 40] if args.quick else set_budgets[name]:
            accuracies = []
            for seed in seeds:
                torch.manual_seed(seed)
                model = SetTransformer(SetTransformerConfig(in_features=10, dim=32, num_sab=num_sab))
                train(model, lambda m, x, y: F.cross_entropy(m(x), y), (x_set, pair_train), steps, lr=3e-3, seed=seed)
                with torch.no_grad():
                    accuracies.append((model(x_set_test).argmax(-1) == pair_test).float().mean().item())
            pair[name][str(steps)] = summary(accuracies)
            print(f"pair, {name:>9}, {steps:>5} steps: {pair[name][str(steps)]}", flush=True)

    chase_train, chase_test = pointer_sets(4000, 0), pointer_sets(1000, 1)
    pointer_models: dict[str, Callable[[], nn.Module]] = {
        "1 hop": lambda: PointerChaser(1),
        "2 hops": lambda: PointerChaser(2),
        "1 round, 8 heads, MLP over [query; read]": lambda: WideLookup(),
    }
    pointer_budgets = {
        "1 hop": [1000, 3000, 10000],
        "2 hops": [1000],
        "1 round, 8 heads, MLP over [query; read]": [1000, 3000, 10000],
    }
    pointer: dict[str, Any] = {"chance": 0.1}
    for name, build in pointer_models.items():
        pointer[name] = {}
        for steps in [20] if args.quick else pointer_budgets[name]:
            accuracies = []
            for seed in seeds:
                torch.manual_seed(seed)
                model = build()
                train(
                    model,
                    lambda m, k, v, q, a, _: F.cross_entropy(m(k, v, q), a),
                    chase_train,
                    steps,
                    lr=1e-2,
                    seed=seed,
                )
                with torch.no_grad():
                    accuracies.append((model(*chase_test[:3]).argmax(-1) == chase_test[3]).float().mean().item())
            pointer[name][str(steps)] = summary(accuracies)
            print(f"pointer, {name}, {steps:>5} steps: {pointer[name][str(steps)]}", flush=True)

    seconds = time.perf_counter() - started
    print(f"done in {seconds:.0f} s")
    if not args.quick:
        config = {
            "seeds": seeds,
            "set_budgets": set_budgets,
            "pointer_budgets": pointer_budgets,
            "batch_size": 64,
            "set_lr": 3e-3,
            "pointer_lr": 1e-2,
            "threads": 1,
        }
        path = save_result(
            "set_attention_curves", {"config": config, "pair": pair, "pointer": pointer, "seconds": seconds}
        )
        print(f"saved {path}")


if __name__ == "__main__":
    main()
