"""attnlib.results: experiments save JSON with provenance, chapters load it, and every shipped
result names a clean commit that contains the script that made it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from attnlib import results

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted(results.RESULTS_DIR.glob("*.json"))


def test_save_and_load_round_trip(monkeypatch, tmp_path):
    monkeypatch.setattr(results, "RESULTS_DIR", tmp_path)
    monkeypatch.setattr(results, "git_state", lambda: {"git_commit": "abc1234", "git_dirty": False, "dirty_files": []})
    path = results.save_result("unit-test_result", {"error": [1.2, 0.8]})
    stored = json.loads(path.read_text())
    assert stored["error"] == [1.2, 0.8]
    assert {"script", "command", "device", "torch", "python", "git_commit", "git_dirty", "date"} <= set(
        stored["provenance"]
    )
    assert stored["provenance"]["git_commit"] == "abc1234" and stored["provenance"]["git_dirty"] is False


def test_a_dirty_run_is_marked_loudly_and_refused_at_the_start(monkeypatch, tmp_path):
    dirty = {"git_commit": "abc1234", "git_dirty": True, "dirty_files": ["experiments/ram.py"]}
    monkeypatch.setattr(results, "RESULTS_DIR", tmp_path)
    monkeypatch.setattr(results, "git_state", lambda: dirty)
    with pytest.warns(UserWarning, match=r"uncommitted changes \(experiments/ram.py\)"):
        path = results.save_result("dirty", {"x": 1})
    stored = json.loads(path.read_text())["provenance"]
    assert stored["git_dirty"] is True and stored["dirty_files"] == ["experiments/ram.py"]
    with pytest.raises(SystemExit, match="uncommitted changes in experiments/ram.py"):
        results.require_clean_tree()
    results.require_clean_tree(allow_dirty=True)  # the explicit override runs


def test_git_state_ignores_the_result_files_themselves():
    state = results.git_state()
    if state["git_commit"] is None:
        pytest.skip("not a git checkout")
    assert not any(f.startswith("attnlib/results/") and f.endswith(".json") for f in state["dirty_files"])


def test_the_script_is_recorded_relative_to_the_checkout(monkeypatch):
    if results.git_state()["git_commit"] is None:
        pytest.skip("not a git checkout")
    monkeypatch.setattr(sys, "argv", [str(ROOT / "experiments" / "ram.py"), "--quick"])
    assert results.provenance()["script"] == "experiments/ram.py"


def test_missing_result_is_none_and_bad_names_are_refused():
    assert results.load_result("no-such-experiment") is None
    with pytest.raises(ValueError, match="letters, digits"):
        results.save_result("../escape", {})


def test_results_are_shipped():
    assert len(SHIPPED) >= 6, [p.name for p in SHIPPED]


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_result_names_a_clean_commit_that_holds_its_script(path):
    stored = results.load_result(path.stem)
    assert stored is not None
    prov = stored["provenance"]
    assert prov["command"] and prov["script"] and prov["git_commit"], f"{path.name}: incomplete provenance {prov}"
    assert (ROOT / prov["script"]).is_file(), f"{path.name}: script {prov['script']} is not in the repository"
    assert prov["git_dirty"] is not True, f"{path.name} was made from uncommitted changes: {prov.get('dirty_files')}"
    if prov["git_dirty"] is None:  # results from before the dirty flag was recorded say how they were re-stamped
        assert prov.get("restamp_note"), f"{path.name}: git_dirty unknown and no restamp_note"
    if _git("rev-parse", "HEAD").returncode != 0:
        pytest.skip("not a git checkout")
    if _git("rev-parse", "--is-shallow-repository").stdout.strip() == "true":
        pytest.skip("shallow clone: old commits are not here")
    found = _git("cat-file", "-e", f"{prov['git_commit']}:{prov['script']}")
    assert found.returncode == 0, f"{path.name}: commit {prov['git_commit']} does not contain {prov['script']}"
