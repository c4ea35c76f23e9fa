"""`lookalike clean` as a user runs it: class folders with planted outliers, then training reads the CSV."""

from __future__ import annotations

import csv
import shutil

import pytest

from lookalike.train.data import read_labelled
from tests.test_cli import run

pytest.importorskip("cv2")


def test_clean_drops_planted_outliers_and_writes_csvs_that_training_reads(tmp_path, shared_data):
    eth80 = shared_data / "eth80" / "images"
    distractors = sorted((shared_data / "landmarks" / "images" / "distractors").glob("*.jpg"))
    root = tmp_path / "classes"
    cow = sorted((eth80 / "cow" / "cow1").glob("*.jpg"))
    planted = {"car": sorted((eth80 / "car" / "car1").glob("*.jpg"))[:8] + distractors[:2],
               "cow": [cow[i] for i in (0, 1, 2, 5)] + distractors[2:3]}  # four views that overlap
    for name, files in planted.items():
        (root / name).mkdir(parents=True)
        for file in files:
            shutil.copy(file, root / name / file.name)
    out = tmp_path / "out" / "cleaned.csv"
    out.parent.mkdir()
    result = run("clean", root, "-o", out, "--workers", "1")
    assert "kept 12 of 15 images" in result.stdout
    assert [line.split()[:4] for line in result.stdout.splitlines()[1:3]] == [["car", "10", "8", "2"],
                                                                              ["cow", "5", "4", "1"]]
    kept, _ = read_labelled(out)
    assert sorted(p.name for p in kept.paths) == sorted(f.name for f in planted["car"][:8] + planted["cow"][:4])
    assert all(p.parent.name == kept.classes[c] for p, c in zip(kept.paths, kept.labels))
    with open(out.with_name("cleaned.classes.csv")) as f:
        assert [row["dropped"] for row in csv.DictReader(f)] == ["2", "1"]


def test_clean_errors_are_one_line(tmp_path):
    result = run("clean", tmp_path / "nothing", "-o", tmp_path / "c.csv", ok=False)
    assert result.returncode == 2 and "no such training input" in result.stderr
    result = run("clean", tmp_path, "-o", tmp_path / "c.csv", "--local-features", "orb", ok=False)
    assert result.returncode == 2 and "orb" in result.stderr and "sift" in result.stderr
    result = run("clean", tmp_path, "-o", tmp_path / "no" / "c.csv", ok=False)
    assert result.returncode == 2 and "does not exist" in result.stderr
