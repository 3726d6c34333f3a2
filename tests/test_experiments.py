"""experiments/: the long reproduction scripts run their --quick smoke mode and resume from checkpoints.

Each script is run as a reader would run it (a subprocess from the repository root).  A run
interrupted after part of its steps and started again must end exactly where an uninterrupted
run ends: the checkpoint carries the model, the optimiser, the schedule and the generators.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from attnlib.data import DataNotFoundError, load_mnist

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module", autouse=True)
def _needs_mnist():
    try:
        load_mnist("test")
    except DataNotFoundError as err:  # pragma: no cover - CI has the offline copies
        pytest.skip(f"MNIST not available: {err}")


def _run(script: str, *args: str) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, f"experiments/{script}", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _final_errors(out: str) -> list[str]:
    return re.findall(r"test error\s+([\d.]+) %", out)


def test_ram_quick_run_resumes_to_the_same_result(tmp_path):
    whole = _run("ram.py", "--quick", "--checkpoint-dir", str(tmp_path / "a"))
    assert "(complete, 2/2 epochs)" in whole and "nothing saved" in whole
    first = _run("ram.py", "--quick", "--checkpoint-dir", str(tmp_path / "b"), "--stop-after-epochs", "1")
    assert "(partial, 1/2 epochs)" in first
    second = _run("ram.py", "--quick", "--checkpoint-dir", str(tmp_path / "b"))
    assert "resumed from" in second and "at epoch 1/2" in second
    assert _final_errors(second)[-1] == _final_errors(whole)[-1]
    assert re.search(r"on the mean path, [\d.]+ % averaged over 2 sampled paths", whole)


def test_stn_quick_run_resumes_to_the_same_result(tmp_path):
    args = ("--quick", "--variants", "R")
    whole = _run("stn_distorted_mnist.py", *args, "--checkpoint-dir", str(tmp_path / "a"))
    assert "nothing saved" in whole
    first = _run("stn_distorted_mnist.py", *args, "--checkpoint-dir", str(tmp_path / "b"), "--stop-after", "20")
    assert "step 20/60" in first and "ST-CNN" not in first.split("Test error")[0]
    second = _run("stn_distorted_mnist.py", *args, "--checkpoint-dir", str(tmp_path / "b"))
    assert "resumed stn_distorted_mnist_R_cnn.pt at step 20/60" in second
    table = lambda out: out.split("Test error")[1]  # noqa: E731
    assert table(second) == table(whole)


# Scripts whose --quick mode is a smoke run of a few steps: it must run from any tree (no clean-tree
# refusal) and write nothing into attnlib/results/, so a reader can try it before a long run.
SMOKE = [
    "variational_alignment.py",
    "resa_selection.py",
    "families_seeds.py",
    "set_attention_curves.py",
    "draw_ablation.py",
    "draw_reader.py",
    "dram_pairs.py",
    "reading_encoders.py",
    "positions_long_range.py",
]


@pytest.mark.parametrize("script", SMOKE)
def test_quick_mode_runs_and_writes_no_result(script):
    results = ROOT / "attnlib" / "results"
    before = {p.name: p.read_bytes() for p in results.glob("*.json")}
    _run(script, "--quick")
    after = {p.name: p.read_bytes() for p in results.glob("*.json")}
    assert after == before, f"{script} --quick changed {sorted(set(after.items()) ^ set(before.items()))}"
