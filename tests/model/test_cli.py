"""The real command line (``python app.py train|evaluate|predict``) end to end on synthetic
faces, and its one-line errors."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.celebamask import IMAGE_DIR, MERGED_DIR
from core.labels import CELEBAMASK

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
TRAIN_STEPS = 120


def cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "app.py"), *map(str, args)], cwd=REPO,
                          env=ENV, capture_output=True, text=True, timeout=timeout)


def f1_from_pngs(pred_dir: Path, tree: Path) -> tuple[float, dict[int, float], int]:
    """The protocol written out again with numpy: one confusion matrix over all images,
    F1 = 2TP / (|GT| + |Pred|), mean over non-background classes present in GT or prediction."""
    n = CELEBAMASK.num_classes
    matrix = np.zeros((n, n), np.int64)
    count = 0
    for gt_path in sorted((tree / MERGED_DIR).glob("*.png")):
        gt = np.asarray(Image.open(gt_path)).astype(np.int64)
        pred_img = Image.open(pred_dir / gt_path.name)
        assert pred_img.mode == "L"
        pred = np.asarray(pred_img).astype(np.int64)
        assert pred.shape == gt.shape
        matrix += np.bincount(gt.ravel() * n + pred.ravel(), minlength=n * n).reshape(n, n)
        count += 1
    f1 = {}
    for c in range(1, n):
        denom = matrix[c].sum() + matrix[:, c].sum()
        if denom:
            f1[c] = 2 * matrix[c, c] / denom
    return float(np.mean(list(f1.values()))), f1, count


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    from model.synth import write_synth_tree

    root = tmp_path_factory.mktemp("cli")
    write_synth_tree(root / "train", 40, seed=1, style="studio", size=256, progress=False)
    write_synth_tree(root / "test", 8, seed=2, style="studio", size=512, progress=False)
    write_synth_tree(root / "wild", 3, seed=3, style="wild", size=256, progress=False)
    return root


@pytest.fixture(scope="module")
def trained(trees):
    ckpt = trees / "parser.pt"
    run = cli("train", "--data", trees / "train", "--out", ckpt, "--config", "small",
              "--steps", TRAIN_STEPS, "--batch-size", 8, "--input-size", 128, "--seed", 0,
              "--threads", 1)
    assert run.returncode == 0, run.stderr[-2000:]
    assert ckpt.is_file() and "wrote" in run.stdout
    return ckpt


@pytest.mark.slow
def test_evaluate_matches_predict_pngs_and_beats_chance(trees, trained, capsys):
    ev = cli("evaluate", "--checkpoint", trained, "--data", trees / "test", "--json",
             "--threads", 1)
    assert ev.returncode == 0, ev.stderr[-2000:]
    scores = json.loads(ev.stdout)
    assert set(CELEBAMASK.names) == set(scores["per_class_f1"]) and scores["n_images"] == 8

    out = trees / "pred"
    pr = cli("predict", "--checkpoint", trained, "--images", trees / "test" / IMAGE_DIR,
             "--out", out, "--threads", 1)
    assert pr.returncode == 0, pr.stderr[-2000:]
    stems = sorted(p.stem for p in (trees / "test" / IMAGE_DIR).iterdir())
    assert sorted(p.stem for p in out.glob("*.png")) == stems

    mean_f1, per_class, count = f1_from_pngs(out, trees / "test")
    assert count == 8
    assert scores["mean_f1"] == pytest.approx(mean_f1, abs=1e-6)
    for c, value in per_class.items():
        assert scores["per_class_f1"][CELEBAMASK.names[c]] == pytest.approx(value, abs=1e-6)

    # chance: labelling pixels at random with the test set's class frequencies p_c gives an
    # expected F1 of p_c for class c (precision = recall = p_c)
    gts = np.concatenate([np.asarray(Image.open(p)).ravel()
                          for p in sorted((trees / "test" / MERGED_DIR).glob("*.png"))])
    share = np.bincount(gts, minlength=CELEBAMASK.num_classes) / gts.size
    chance = float(np.mean([share[c] for c in range(1, CELEBAMASK.num_classes) if share[c] > 0]))
    with capsys.disabled():
        print(f"\n[cli e2e] {TRAIN_STEPS} steps: mean F1 {100 * mean_f1:.2f} "
              f"(evaluate {100 * scores['mean_f1']:.2f}), chance {100 * chance:.2f}")
    assert mean_f1 > 0.15 and mean_f1 > 4 * chance


@pytest.mark.slow
def test_finetune_with_distillation_from_checkpoint(trees, trained):
    from model.checkpoint import load_checkpoint

    out = trees / "finetuned.pt"
    run = cli("train", "--data", trees / "wild", "--out", out, "--init", trained,
              "--distill-from", trained, "--unlabeled", trees / "wild" / IMAGE_DIR,
              "--steps", 3, "--batch-size", 2, "--threads", 1, "--distill-weight", 0.5,
              "--distill-confidence", 0.5, "--lovasz", 0.25)
    assert run.returncode == 0, run.stderr[-2000:]
    before, after = load_checkpoint(trained), load_checkpoint(out)
    assert after.config == before.config
    assert after.meta["distill"]["teacher"] == "checkpoint"
    assert (after.meta["distill"]["weight"], after.meta["distill"]["confidence"]) == (0.5, 0.5)
    assert after.meta["loss"]["lovasz_weight"] == 0.25 and "lovasz" in after.meta["final_losses"]
    assert after.meta["n_unlabeled"] == 3 and after.meta["steps"] == 3
    assert "distill" in after.meta["final_losses"]
    changed = [k for k, v in before.model.state_dict().items()
               if not np.array_equal(v.numpy(), after.model.state_dict()[k].numpy())]
    assert changed


def test_errors_are_one_line(tmp_path, capsys):
    import app

    (tmp_path / "empty").mkdir()
    cases = [
        (["train", "--data", tmp_path / "nope", "--out", tmp_path / "x.pt", "--steps", 1], "not found"),
        (["train", "--data", tmp_path / "empty", "--out", tmp_path / "x.pt"], "not a CelebAMask-HQ tree"),
        (["train", "--data", tmp_path, "--out", tmp_path / "x.pt", "--seconds", 0], "--seconds"),
        (["train", "--data", tmp_path, "--out", tmp_path / "x.pt", "--distill-confidence", 2],
         "--distill-confidence"),
        (["evaluate", "--checkpoint", tmp_path / "missing.pt", "--data", tmp_path], "not found"),
        (["predict", "--checkpoint", tmp_path / "missing.pt", "--images", tmp_path / "empty",
          "--out", tmp_path / "o"], "no images"),
    ]
    if not __import__("torch").cuda.is_available():
        cases.append((["train", "--data", tmp_path, "--out", tmp_path / "x.pt", "--device", "cuda"],
                      "CUDA is not available"))
    for args, words in cases:
        assert app.main([str(a) for a in args]) == 2, args
        err = capsys.readouterr().err
        lines = [line for line in err.strip().splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], err
