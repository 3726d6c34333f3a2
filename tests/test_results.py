"""attnlib.results: experiments save JSON with provenance, chapters load it."""
from __future__ import annotations

import json

import pytest

from attnlib import results


def test_save_and_load_round_trip(monkeypatch, tmp_path):
    monkeypatch.setattr(results, "RESULTS_DIR", tmp_path)
    path = results.save_result("unit-test_result", {"error": [1.2, 0.8]})
    stored = json.loads(path.read_text())
    assert stored["error"] == [1.2, 0.8]
    assert {"command", "device", "torch", "python", "date"} <= set(stored["provenance"])


def test_missing_result_is_none_and_bad_names_are_refused():
    assert results.load_result("no-such-experiment") is None
    with pytest.raises(ValueError, match="letters, digits"):
        results.save_result("../escape", {})


def test_every_shipped_result_records_its_provenance():
    for path in results.RESULTS_DIR.glob("*.json"):
        stored = results.load_result(path.stem)
        assert stored is not None and stored["provenance"]["command"], path.name
