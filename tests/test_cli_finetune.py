"""`lookalike finetune` as a user runs it, on a tiny folder of classes."""

from __future__ import annotations

import torch

from tests.conftest import scene
from tests.test_cli import run


def test_finetune_writes_a_model_its_plot_and_a_learned_whitening_that_index_accepts(tmp_path):
    root = tmp_path / "classes"
    for c in range(4):
        (root / f"c{c}").mkdir(parents=True)
        for i in range(3):
            scene(c, (100, 80)).crop((5 * i, 4 * i, 5 * i + 64, 4 * i + 64)).save(root / f"c{c}" / f"{i}.jpg")
    model, white = tmp_path / "m.pt", tmp_path / "w.npz"
    result = run("finetune", root, "-o", model, "--loss", "triplet", "--epochs", "1", "--queries", "4",
                 "--negatives", "2", "--pool", "8", "--batch", "2", "--resolution", "64", "--val-fraction", "0.5",
                 "--threads", "1", "--seed", "1", "--whitening", white, "--whitening-dim", "8", "--workers", "1")
    assert "best epoch" in result.stdout and f"-s weights={model} -s whitening={white}" in result.stdout
    assert model.is_file() and model.with_suffix(".png").stat().st_size > 1000
    assert model.with_name("m.pt.checkpoint").is_file()
    assert torch.load(model, weights_only=True)["config"]["training"]["loss"] == "triplet"

    collection = tmp_path / "c"
    result = run("index", root, "-c", collection, "-d", "gem", "-s", f"weights={model}", "-s", f"whitening={white}",
                 "--workers", "1")
    result = run("search", root / "c0" / "0.jpg", "-c", collection, "-k", "3")
    assert "c0" in result.stdout.splitlines()[1]


def test_finetune_errors_are_one_line(tmp_path):
    result = run("finetune", tmp_path / "nothing", "-o", tmp_path / "m.pt", ok=False)
    assert result.returncode == 2 and "no such training input" in result.stderr
    result = run("finetune", tmp_path, "-o", tmp_path / "m.pt", "--loss", "hinge", ok=False)
    assert result.returncode == 2 and "unknown loss 'hinge'" in result.stderr
    result = run("finetune", tmp_path, "-o", tmp_path / "m.pt", "-d", "vlad", ok=False)
    assert result.returncode == 2 and "use -d gem" in result.stderr
