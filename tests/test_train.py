"""attnlib.train: seeding, devices, minibatches and the training loop."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from torch import nn

from attnlib import accuracy, default_device, fit, minibatches, seed_everything, train_classifier


def test_seed_everything_makes_every_generator_repeat():
    def draws():
        return random.random(), float(np.random.rand()), torch.rand(3).tolist()

    gen = seed_everything(123)
    first, first_gen = draws(), torch.rand(2, generator=gen).tolist()
    gen = seed_everything(123)
    assert draws() == first and torch.rand(2, generator=gen).tolist() == first_gen
    seed_everything(124)
    assert draws() != first


def test_default_device(monkeypatch):
    monkeypatch.delenv("ATTNLIB_DEVICE", raising=False)
    assert default_device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    monkeypatch.setenv("ATTNLIB_DEVICE", "cpu")
    assert default_device() == torch.device("cpu")


def test_minibatches_visit_every_row_once():
    x, y = torch.arange(10)[:, None].float(), torch.arange(10)
    batches = list(minibatches(x, y, batch_size=4, generator=torch.Generator().manual_seed(0)))
    assert [len(b[1]) for b in batches] == [4, 4, 2]
    assert sorted(torch.cat([b[1] for b in batches]).tolist()) == list(range(10))
    assert all(torch.equal(bx[:, 0].long(), by) for bx, by in batches)  # rows stay aligned
    assert [len(b[0]) for b in minibatches(x, batch_size=4, shuffle=False, drop_last=True)] == [4, 4]
    with pytest.raises(ValueError, match=r"tensor 1 has shape \(9,\)"):
        list(minibatches(x, torch.arange(9), batch_size=2))


def test_fit_learns_a_linear_map_and_is_deterministic():
    def run():
        gen = seed_everything(0)
        x = torch.randn(256, 3, generator=gen)
        y = x @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.3
        model = nn.Linear(3, 1)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        history = fit(
            model,
            opt,
            lambda m, b: ((m(b[0]) - b[1]) ** 2).mean(),
            lambda: minibatches(x, y, batch_size=32, generator=gen),
            epochs=20,
            device="cpu",
            on_epoch_end=lambda e: {"epoch": float(e)},
            show_progress=False,
        )
        return history, model

    history, model = run()
    assert len(history.losses) == 20 * 8 and len(history.epoch_metrics) == 20
    assert history.losses[-1] < 1e-3 < history.losses[0]
    assert torch.allclose(model.weight, torch.tensor([[1.0, -2.0, 0.5]]), atol=1e-2)
    assert not model.training
    assert run()[0].losses == history.losses


def test_fit_stops_on_a_non_finite_loss():
    model = nn.Linear(1, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(FloatingPointError, match="step 0"):
        fit(
            model,
            opt,
            lambda m, b: m(b[0]).sum() * float("nan"),
            [(torch.ones(2, 1),)],
            device="cpu",
            show_progress=False,
        )


def test_fit_shows_one_progress_bar_for_the_whole_run(monkeypatch):
    import attnlib.train as train_module

    bars = []
    real = train_module.progress

    def counting_progress(*args, **kwargs):
        bar = real(*args, **kwargs)
        bars.append(bar)
        return bar

    monkeypatch.setattr(train_module, "progress", counting_progress)
    model = nn.Linear(1, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    data = [(torch.ones(2, 1),)] * 3
    fit(model, opt, lambda m, b: m(b[0]).pow(2).mean(), data, epochs=4, device="cpu")
    fit(model, opt, lambda m, b: m(b[0]).pow(2).mean(), lambda: iter(data), epochs=4, device="cpu")
    assert len(bars) == 2
    assert bars[0].total == 12 and bars[0].n == 12  # steps of a sequence of known length
    assert bars[1].total == 4 and bars[1].n == 4  # epochs of a generator


def test_progress_redraws_at_most_about_once_a_second(capsys):
    """A long loop must not flood a notebook's output channel (see attnlib.train.progress)."""
    import time

    from attnlib.train import progress

    bar = progress(total=30, desc="quiet")
    start = time.perf_counter()
    for _ in range(30):
        time.sleep(0.05)
        bar.update()
    bar.close()
    elapsed = time.perf_counter() - start
    redraws = capsys.readouterr().err.count("quiet")  # each redraw writes the description once
    # tqdm's default (0.1 s) would redraw about 15 times here; the first draw, the final
    # one and one per elapsed interval are allowed.
    assert redraws <= elapsed / 1.0 + 3, (redraws, elapsed)
    assert redraws >= 1


def _separable(n: int = 400, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=g)
    return x, (x[:, 0] + x[:, 1] > 0).long()


def test_train_classifier_learns_a_separable_problem_and_accuracy_measures_it():
    x, y = _separable()
    torch.manual_seed(0)
    model = nn.Linear(2, 2)
    before = accuracy(model, x, y)
    trained = train_classifier(
        model, x, y, steps=60, batch_size=32, lr=0.1, generator=torch.Generator().manual_seed(0), device="cpu"
    )
    assert trained is model and not model.training
    after = accuracy(model, x, y, batch_size=64)
    assert after > 0.95 and after > before
    assert accuracy(model, x, 1 - y) == pytest.approx(1 - after)


def test_train_classifier_is_deterministic_and_counts_steps():
    x, y = _separable()
    weights = []
    for _ in range(2):
        torch.manual_seed(1)
        model = train_classifier(
            nn.Linear(2, 2), x, y, steps=7, batch_size=32, generator=torch.Generator().manual_seed(3), device="cpu"
        )
        weights.append(model.weight.detach().clone())
    assert torch.equal(weights[0], weights[1])
    torch.manual_seed(1)
    longer = train_classifier(
        nn.Linear(2, 2), x, y, steps=8, batch_size=32, generator=torch.Generator().manual_seed(3), device="cpu"
    )
    assert not torch.equal(longer.weight, weights[0])
    with pytest.raises(ValueError, match="steps must be >= 1; got 0"):
        train_classifier(nn.Linear(2, 2), x, y, steps=0)


def test_checkpoint_resumes_only_with_the_same_settings(tmp_path, capsys):
    from attnlib.train import Checkpoint

    path = tmp_path / "sub" / "run.pt"
    first = Checkpoint(path, {"lr": 1e-3, "sizes": (1, 2)})
    assert first.load() is None  # nothing saved yet
    model = torch.nn.Linear(3, 2)
    first.save({"model": model.state_dict(), "epoch": 4})
    assert not path.with_name("run.pt.tmp").exists()  # written through a temporary file, then renamed
    state = Checkpoint(path, {"lr": 1e-3, "sizes": [1, 2]}).load()  # a tuple and a list are the same setting
    assert state is not None and state["epoch"] == 4
    assert torch.equal(state["model"]["weight"], model.weight.detach())
    assert Checkpoint(path, {"lr": 1e-4, "sizes": [1, 2]}).load() is None  # other settings: never resumed
    assert "other settings (lr)" in capsys.readouterr().out
    first.remove()
    assert not path.exists()
