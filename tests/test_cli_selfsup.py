"""`lookalike finetune --loss sscd` as a user runs it, on a tiny unlabelled folder."""

from __future__ import annotations

import torch

from tests.conftest import scene
from tests.test_cli import run


def test_sscd_trains_on_an_unlabelled_folder_and_writes_the_usual_model_file(tmp_path):
    root = tmp_path / "photos"
    for i in range(10):
        (root / f"trip{i % 2}").mkdir(parents=True, exist_ok=True)  # sub-folders are not classes here
        scene(i, (96, 72)).save(root / f"trip{i % 2}" / f"{i}.jpg", quality=90)
    model = tmp_path / "ssl.pt"
    result = run("finetune", root, "-o", model, "--loss", "sscd", "--epochs", "1", "--queries", "8", "--batch", "4",
                 "--resolution", "48", "--trainable-blocks", "1", "--val-fraction", "0.2", "--threads", "1")
    assert "trained on 10 unlabelled images; 2 images held out" in result.stdout
    assert f"use it with: -d gem -s weights={model}" in result.stdout
    saved = torch.load(model, weights_only=True)
    assert saved["format"] == "lookalike-finetuned/1" and saved["config"]["training"]["loss"] == "sscd"
    assert model.with_suffix(".png").stat().st_size > 1000

    result = run("finetune", root, "-o", model, "--loss", "sscd", "--whitening", tmp_path / "w.npz", ok=False)
    assert result.returncode == 2 and "need labels" in result.stderr
