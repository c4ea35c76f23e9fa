"""`lookalike finetune` as a user runs it, on a tiny folder of classes."""

from __future__ import annotations

import torch

from tests.conftest import scene
from tests.test_cli import run


def _classes(root, classes: int, per_class: int, size, step, crop):
    """A folder of ``classes`` sub-folders, each with ``per_class`` shifted crops of one scene."""
    (dx, dy), (w, h) = step, crop
    for c in range(classes):
        (root / f"c{c}").mkdir(parents=True)
        for i in range(per_class):
            scene(c, size).crop((dx * i, dy * i, dx * i + w, dy * i + h)).save(root / f"c{c}" / f"{i}.jpg")
    return root


def test_finetune_writes_a_model_its_plot_and_a_learned_whitening_that_index_accepts(tmp_path):
    root = _classes(tmp_path / "classes", 4, 3, (100, 80), step=(5, 4), crop=(64, 64))
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
    assert result.returncode == 2 and "finetune trains gem, netvlad, fvfc or delf, not 'vlad'" in result.stderr
    result = run("finetune", tmp_path, "-o", tmp_path / "m.pt", "-d", "delf", "--loss", "triplet", ok=False)
    assert result.returncode == 2 and "classification loss, not 'triplet'" in result.stderr


def test_finetune_fvfc_and_delf_attention_make_files_that_index_and_search_use(tmp_path):
    root = _classes(tmp_path / "classes", 6, 4, (120, 90), step=(4, 3), crop=(80, 60))
    tiny = ["--epochs", "1", "--queries", "6", "--negatives", "2", "--batch", "3", "--val-fraction", "0.34",
            "--workers", "1", "--threads", "1"]
    model = tmp_path / "fvfc.npz"
    result = run("finetune", root, "-d", "fvfc", "-s", "k=4", "-s", "pca=16", "-s", "reduce=8", "-s", "hidden=16",
                 "-s", "out=8", "-o", model, *tiny)
    use = result.stdout.strip().splitlines()[-1].removeprefix("use it with: ").split()
    assert use[:4] == ["-d", "fvfc", "-s", f"vocabulary={model}"] and model.with_suffix(".png").is_file()
    attention = tmp_path / "attention.pt"
    result = run("finetune", root, "-d", "delf", "-o", attention, "--resolution", "64", *tiny)
    assert f"--local-set attention={attention}" in result.stdout
    collection = tmp_path / "c"
    run("index", root, "-c", collection, *use, "--local-features", "delf", "--local-set", f"attention={attention}",
        "--local-set", "dim=8", "--local-set", "max_keypoints=50", "--workers", "1")
    assert (collection / "delf-attention.pt").read_bytes() == attention.read_bytes()
    result = run("search", root / "c0" / "0.jpg", "-c", collection, "-k", "3", "--rerank", "sv")
    assert "c0" in result.stdout.splitlines()[1]
