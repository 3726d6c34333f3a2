"""Seeds for the attention-families chapter's multimodal, arithmetic and category-based sections.

The chapter (``book/part5/attention_families.ipynb``) trains each model once, with seed 0,
at a budget of seconds.  This script repeats those runs with several seeds, at the same
budgets and on the same generated data, so that the chapter can say which differences
hold beyond one seed, and it adds the controls the chapter's claims need:

* **multimodal** (stacked attention, Yang et al. 2016): one hop and two hops on the digit
  boards, the chapter's model (pixel regions, 200 reading steps, 800 question steps) and a
  longer run of a design that makes the relation learnable (regions = the digit reading plus
  a one-hot place, an MLP answer head, 6000 boards, 1000 reading steps, 4000 question steps);
  the question-type prior and the position rule (:func:`attnlib.data.position_rule_accuracy`)
  are stored beside them;
* **arithmetic** (weakly supervised localisation): the plain CAM classifier, ADL (Choe & Shim
  2019; one drop-or-importance draw per batch, as in the paper, and the per-image variant)
  and the ACoL-style erase-and-find head (Zhang et al. 2018), scored by box IoU at 0.5 of the
  map's maximum, at each model's own best threshold, and, to control for box width, the plain CAM's
  IoU at the threshold that matches the erase-and-find model's mean box area, and the same two
  heads without the erasing (a sum of two plain CAMs: the control for the second head);
* **category-based**: GAIN's fine-tuning (Li et al. 2018, attention-mining weight 1) against
  the same fine-tuning steps with weight 0 (a control), scored on the Grad-CAM map.

Run from the repository root (one CPU thread, about 15 minutes on a loaded 2-core machine):

    .venv/bin/python experiments/families_seeds.py            # writes attnlib/results/families_seeds.json
    .venv/bin/python experiments/families_seeds.py --quick    # a smoke test, nothing written
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
from attnlib.category import (
    LocalisationCNN,
    LocalisationConfig,
    box_from_map,
    box_iou,
    gain_loss,
    grad_cam,
    ink_boxes,
    map_coverage,
)
from attnlib.data import (
    digit_scenes_qa,
    load_mnist,
    position_rule_accuracy,
    question_type_prior,
    region_attention_share,
    translated_mnist,
)
from attnlib.multimodal import SceneQAConfig, SceneQAModel
from attnlib.results import require_clean_tree, save_result
from attnlib.train import minibatches

QUESTION_KINDS = ("left of", "count above")


def train(
    model: nn.Module,
    loss_fn: Callable[..., Tensor],
    tensors: tuple[Tensor, ...],
    steps: int,
    *,
    batch_size: int = 64,
    lr: float = 3e-3,
    seed: int = 0,
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


def summary(values: list[float]) -> dict[str, Any]:
    return {
        "values": values,
        "mean": statistics.fmean(values),
        "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
    }


def multimodal(args: argparse.Namespace) -> dict[str, Any]:
    tr_x, tr_y = load_mnist("train")
    te_x, te_y = load_mnist("test")
    test = digit_scenes_qa(te_x, te_y, 1000, seed=1)
    kinds = test.questions[:, 0]

    def cell_loss(model: SceneQAModel, images: Tensor, cells: Tensor) -> Tensor:
        return F.cross_entropy(model.cell_logits(images).flatten(0, 1), cells.flatten())

    def answer_loss(model: SceneQAModel, images: Tensor, questions: Tensor, answers: Tensor) -> Tensor:
        return F.cross_entropy(model(images, questions)[0], answers)

    designs = {
        "chapter": {"boards": 3000, "reading": 200, "steps": args.qa_steps, "seeds": args.seeds, "config": {}},
        "digit_regions": {
            "boards": args.long_boards,
            "reading": args.long_reading_steps,
            "steps": args.long_qa_steps,
            "seeds": args.long_seeds,
            "config": {"regions": "digits", "answer_hidden": 128},
        },
    }
    out: dict[str, Any] = {"designs": {}}
    chapter_train = digit_scenes_qa(tr_x[:20000], tr_y[:20000], 3000, seed=0)
    prior = question_type_prior(chapter_train.questions, chapter_train.answers, test.questions) == test.answers
    rule = position_rule_accuracy(test.cells, test.questions, test.answers)
    wide = position_rule_accuracy(test.cells, test.questions, test.answers, right_neighbour=False)
    out["baselines"] = {
        name: {
            "question-type prior": prior[kinds == k].float().mean().item(),
            "position rule": rule[kinds == k].mean().item(),
            "position rule, any left-column digit": wide[kinds == k].mean().item(),
        }
        for k, name in enumerate(QUESTION_KINDS)
    }
    for design, spec in designs.items():
        data = (
            chapter_train
            if spec["boards"] == 3000
            else digit_scenes_qa(tr_x[:20000], tr_y[:20000], spec["boards"], seed=0)
        )
        cells = data.cells.where(data.cells >= 0, torch.tensor(10))
        runs: dict[str, dict[str, list[float]]] = {}
        for hops in (1, 2):
            rows: dict[str, list[float]] = {}
            for seed in spec["seeds"]:
                torch.manual_seed(seed)
                model = SceneQAModel(SceneQAConfig(hops=hops, **spec["config"]))
                train(model, cell_loss, (data.images, cells), spec["reading"], seed=seed)
                train(model, answer_loss, (data.images, data.questions, data.answers), spec["steps"], seed=seed)
                with torch.no_grad():
                    logits, weights = model(test.images, test.questions)
                correct = (logits.argmax(-1) == test.answers).float()
                share = region_attention_share(weights[:, -1], test.regions)
                rows.setdefault("accuracy", []).append(correct.mean().item())
                for k, name in enumerate(QUESTION_KINDS):
                    rows.setdefault(f"{name} accuracy", []).append(correct[kinds == k].mean().item())
                    rows.setdefault(f"{name} share", []).append(share[kinds == k].mean().item())
                print(
                    f"  qa {design} hops={hops} seed={seed}: "
                    + ", ".join(f"{key} {v[-1]:.3f}" for key, v in rows.items()),
                    flush=True,
                )
            runs[f"{hops} hop" + ("s" if hops > 1 else "")] = {key: summary(v) for key, v in rows.items()}
        out["designs"][design] = {
            **{key: spec[key] for key in ("boards", "reading", "steps", "seeds")},
            **spec["config"],
            "runs": runs,
        }
    return out


def localisation(args: argparse.Namespace) -> dict[str, Any]:
    tr_x, tr_y = load_mnist("train")
    te_x, te_y = load_mnist("test")
    loc_train = translated_mnist(tr_x[:4000], tr_y[:4000], seed=0, canvas=56)
    loc_test = translated_mnist(te_x[:1000], te_y[:1000], seed=0, canvas=56, split_code=1)
    x, y = F.avg_pool2d(loc_train.images, 2), loc_train.labels
    x_test, y_test = F.avg_pool2d(loc_test.images, 2), loc_test.labels
    truth = ink_boxes(x_test)

    def area(boxes: Tensor) -> Tensor:
        return ((boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)).float()

    # trivial baseline: the training digits' mean ink box size, centred on the canvas (no labels, no model)
    train_boxes = ink_boxes(x)
    w = int(round((train_boxes[:, 2] - train_boxes[:, 0] + 1).float().mean().item()))
    h = int(round((train_boxes[:, 3] - train_boxes[:, 1] + 1).float().mean().item()))
    x0, y0 = (28 - w) // 2, (28 - h) // 2
    centre = torch.tensor([[x0, y0, x0 + w - 1, y0 + h - 1]]).expand(len(truth), 4)
    out: dict[str, Any] = {"centre box IoU": box_iou(centre, truth).mean().item(), "centre box size": [w, h]}

    def classification_loss(model: LocalisationCNN, images: Tensor, labels: Tensor) -> Tensor:
        return F.cross_entropy(model(images), labels)

    def scores(model: LocalisationCNN, maps: Tensor) -> dict[str, float]:
        up = F.interpolate(maps, size=(28, 28), mode="bilinear", align_corners=False)
        with torch.no_grad():
            acc = (model(x_test).argmax(-1) == y_test).float().mean().item()
        boxes = box_from_map(up, 0.5)
        sweep = {t / 100: box_iou(box_from_map(up, t / 100), truth).mean().item() for t in range(4, 100, 4)}
        best = max(sweep, key=lambda t: sweep[t])
        return {
            "accuracy": acc,
            "iou": box_iou(boxes, truth).mean().item(),
            "coverage": map_coverage(maps, x_test, 0.5).mean().item(),
            "box area": area(boxes).mean().item(),
            "best iou over thresholds": sweep[best],  # each model at its own best threshold: no box-width advantage
            "best threshold": best,
        }

    def matched_iou(maps: Tensor, target_area: float) -> tuple[float, float]:
        """(IoU, threshold) of ``maps`` at the threshold whose mean box area is closest to ``target_area``."""
        up = F.interpolate(maps, size=(28, 28), mode="bilinear", align_corners=False)
        taus = [t / 100 for t in range(4, 100, 2)]
        best = min(taus, key=lambda t: abs(area(box_from_map(up, t)).mean().item() - target_area))
        return box_iou(box_from_map(up, best), truth).mean().item(), best

    variants = {
        "plain": LocalisationConfig(),
        "ADL": LocalisationConfig(adl=True),
        "ADL per image": LocalisationConfig(adl=True, adl_per_image=True),
        "erase-and-find": LocalisationConfig(reverse=True),
        "two heads, no erasing": LocalisationConfig(reverse=True, reverse_erase=False),
    }
    rows: dict[str, dict[str, list[float]]] = {name: {} for name in variants}
    gain_rows: dict[str, dict[str, list[float]]] = {"GAIN": {}, "control": {}, "before": {}}
    for seed in args.seeds:
        models = {}
        for name, config in variants.items():
            torch.manual_seed(seed)
            model = train(LocalisationCNN(config), classification_loss, (x, y), args.loc_steps, lr=1e-2, seed=seed)
            models[name] = model
            for key, v in scores(model, model.cam(x_test, y_test)).items():
                rows[name].setdefault(key, []).append(v)
        plain_maps = models["plain"].cam(x_test, y_test)
        iou, tau = matched_iou(plain_maps, rows["erase-and-find"]["box area"][-1])
        rows["plain"].setdefault("iou at the erase-and-find box area", []).append(iou)
        rows["plain"].setdefault("threshold matching that area", []).append(tau)
        # GAIN against the same fine-tuning with the attention-mining weight 0
        for name, alpha in (("GAIN", 1.0), ("control", 0.0)):
            model = LocalisationCNN()
            model.load_state_dict(models["plain"].state_dict())
            train(model, lambda m, a, b, al=alpha: gain_loss(m, a, b, alpha=al)[0], (x, y), args.gain_steps, seed=seed)
            models[name] = model
        for name in ("before", "GAIN", "control"):
            model = models["plain" if name == "before" else name]
            features = model.features(x_test).detach().requires_grad_(True)
            target = model.classify(features).gather(1, y_test[:, None])[:, 0]
            maps = grad_cam(features, target).detach()
            up = F.interpolate(maps, size=(28, 28), mode="bilinear", align_corners=False)
            with torch.no_grad():
                acc = (model(x_test).argmax(-1) == y_test).float().mean().item()
            for key, v in (
                ("accuracy", acc),
                ("iou", box_iou(box_from_map(up, 0.5), truth).mean().item()),
                ("coverage", map_coverage(maps, x_test, 0.5).mean().item()),
            ):
                gain_rows[name].setdefault(key, []).append(v)
        print(
            f"  localisation seed={seed}: "
            + "; ".join(f"{n} iou {r['iou'][-1]:.3f} area {r['box area'][-1]:.0f}" for n, r in rows.items())
            + f"; plain at matched area {iou:.3f} (tau {tau}); GAIN coverage {gain_rows['GAIN']['coverage'][-1]:.3f}, "
            f"control {gain_rows['control']['coverage'][-1]:.3f}",
            flush=True,
        )
    out["models"] = {name: {key: summary(v) for key, v in r.items()} for name, r in rows.items()}
    out["gain"] = {name: {key: summary(v) for key, v in r.items()} for name, r in gain_rows.items()}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--qa-steps", type=int, default=800, help="the chapter's question-answering steps")
    parser.add_argument("--long-qa-steps", type=int, default=4000, help="question steps of the longer design")
    parser.add_argument("--long-reading-steps", type=int, default=1000, help="digit-reading steps of the longer design")
    parser.add_argument("--long-boards", type=int, default=6000)
    parser.add_argument("--long-seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--loc-steps", type=int, default=300, help="the chapter's localisation steps")
    parser.add_argument("--gain-steps", type=int, default=100, help="the chapter's GAIN fine-tuning steps")
    parser.add_argument("--quick", action="store_true", help="a smoke test (tiny budget); writes nothing")
    parser.add_argument("--allow-dirty", action="store_true", help="run from a dirty tree (result marked so)")
    args = parser.parse_args()
    if not args.quick:
        require_clean_tree(args.allow_dirty)
    else:
        args.seeds, args.qa_steps, args.long_qa_steps, args.long_boards = [0, 1], 20, 20, 3000
        args.long_seeds, args.long_reading_steps = [0, 1], 20
        args.loc_steps, args.gain_steps = 20, 5
    torch.set_num_threads(1)
    start = time.perf_counter()
    result = {
        "seeds": args.seeds,
        "budgets": {
            "qa_steps": args.qa_steps,
            "long_qa_steps": args.long_qa_steps,
            "long_boards": args.long_boards,
            "loc_steps": args.loc_steps,
            "gain_steps": args.gain_steps,
        },
        "multimodal": multimodal(args),
        "localisation": localisation(args),
    }
    result["seconds"] = time.perf_counter() - start
    print(f"done in {result['seconds']:.0f} s")
    if not args.quick:
        print(f"saved {save_result('families_seeds', result)}")


if __name__ == "__main__":
    main()
