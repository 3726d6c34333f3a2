"""FlexAttention on the CPU: compiled against eager against dense SDPA, as ratios.

Dong, Feng, Jiang, Guessous, Liang & He (2024), "Flex Attention: A Programming Model for
Generating Optimized Attention Kernels", arXiv:2412.05496.  ``flex_attention`` called outside
``torch.compile`` runs eagerly: it builds the whole score matrix and calls the ``score_mod`` on
it.  Under ``torch.compile`` (Inductor, which also generates CPU code) the mask and bias functions
are fused into one kernel that works block by block and skips the blocks the block mask rules out.

For each case (a causal mask; a causal sliding window of ``--window`` keys; causal ALiBi as a
``score_mod``, the masks and bias of :mod:`attnlib.efficient.flex_masks`) and each sequence length,
this script times, on ``--threads`` threads, in float32, one forward pass of

* ``sdpa``: :func:`torch.nn.functional.scaled_dot_product_attention` with the equivalent dense
  mask or additive bias (``is_causal=True`` for the causal case);
* ``flex_eager``: ``flex_attention`` uncompiled, with the block mask;
* ``flex_compiled``: ``torch.compile(flex_attention)``, with the block mask;

checks that the three agree (to 1e-4), reports the median of ``--repeats`` calls after a warm-up
and the seconds the first compiled call took (compilation), and the block mask's sparsity.

Run from the repository root::

    .venv/bin/python benchmarks/flex_attention.py --save   # writes attnlib/results/flex_attention_benchmark.json
    .venv/bin/python benchmarks/flex_attention.py --quick  # one small case, nothing written
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from typing import Any, Callable, Optional

import torch
import torch.nn.functional as F
from torch.nn.attention.flex_attention import create_block_mask, create_mask, flex_attention

from attnlib.efficient import alibi_score_mod, causal_mask_mod, score_mod_bias, sliding_window_mask_mod
from attnlib.results import require_clean_tree, save_result


def median_seconds(fn: Callable[[], Any], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run_case(name: str, L: int, args: argparse.Namespace, compiled: Callable[..., Any]) -> dict[str, Any]:
    B, H, E = args.batch, args.heads, args.head_dim
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(B, H, L, E, generator=gen) for _ in range(3))  # (B, H, L, E)
    score_mod: Optional[Callable[..., Any]] = None
    mask_mod = causal_mask_mod
    if name == "sliding_window":
        mask_mod = sliding_window_mask_mod(args.window)
    elif name == "alibi":
        score_mod = alibi_score_mod(H)
    block_mask = create_block_mask(mask_mod, B, H, L, L, device="cpu")
    dense = create_mask(mask_mod, B, H, L, L, device="cpu")  # (B, H, L, L) True: attend
    if score_mod is not None:
        bias = score_mod_bias(score_mod, B, H, L, L).to(q.dtype)  # (B, H, L, L)
        attn_mask: Any = bias.masked_fill(~dense, float("-inf"))
    else:
        attn_mask = dense

    def sdpa() -> torch.Tensor:
        if name == "causal":
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)

    def eager() -> torch.Tensor:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="flex_attention called without torch.compile")
            return flex_attention(q, k, v, score_mod=score_mod, block_mask=block_mask)

    def fused() -> torch.Tensor:
        return compiled(q, k, v, score_mod=score_mod, block_mask=block_mask)

    start = time.perf_counter()
    out_compiled = fused()  # the first call compiles (or reuses a kernel compiled for these shapes)
    first_call = time.perf_counter() - start
    reference = sdpa()
    err = max((eager() - reference).abs().max().item(), (out_compiled - reference).abs().max().item())
    if err > 1e-4:
        raise SystemExit(f"{name}, L = {L}: flex and SDPA differ by {err:.2e}")
    row = {
        "case": name,
        "seq_len": L,
        "max_abs_err": err,
        "first_compiled_call_s": first_call,
        "block_sparsity": float(block_mask.sparsity()) / 100,
        "dense_mask_fraction_kept": float(dense.float().mean()),
    }
    for label, fn in (("sdpa", sdpa), ("flex_eager", eager), ("flex_compiled", fused)):
        row[f"{label}_ms"] = 1e3 * median_seconds(fn, args.repeats)
    print(
        f"{name:15s} L = {L:5d}: SDPA {row['sdpa_ms']:8.2f} ms, flex eager {row['flex_eager_ms']:8.2f} ms, "
        f"flex compiled {row['flex_compiled_ms']:8.2f} ms (first call {first_call:5.1f} s); "
        f"blocks skipped {row['block_sparsity']:.0%}",
        flush=True,
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[512, 2048])
    parser.add_argument("--cases", nargs="+", default=["causal", "sliding_window", "alibi"])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--window", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="one small case; nothing written")
    parser.add_argument("--save", action="store_true", help="write attnlib/results/flex_attention_benchmark.json")
    parser.add_argument("--allow-dirty", action="store_true")
    args = parser.parse_args()
    if args.save:
        require_clean_tree(args.allow_dirty)
    if args.quick:
        args.lengths, args.cases, args.repeats = [256], ["causal"], 2
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    compiled = torch.compile(flex_attention)
    rows = [run_case(name, L, args, compiled) for name in args.cases for L in args.lengths]
    print(f"total {time.perf_counter() - start:.0f} s")
    if args.save and not args.quick:
        save_result("flex_attention_benchmark", {"config": vars(args), "rows": rows})


if __name__ == "__main__":
    main()
