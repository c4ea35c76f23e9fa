"""The command line, run as a user runs it: real subprocesses, real files."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from PIL import Image


def run(*args, ok=True):
    result = subprocess.run([sys.executable, "-m", "lookalike", *map(str, args)],
                            capture_output=True, text=True, timeout=300)
    if ok:
        assert result.returncode == 0, result.stderr
    return result


def test_import_is_light():
    code = ("import sys, lookalike, lookalike.cli, lookalike.descriptors, lookalike.io;"
            "heavy = {'torch', 'cv2', 'faiss'} & set(sys.modules); assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_index_search_info_remove(tmp_path, image_dir):
    collection = tmp_path / "c"
    (image_dir / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    result = run("index", image_dir, "--collection", collection, "--descriptor", "color-hist",
                 "--set", "space=lab", "--workers", "2")
    assert "12 indexed" in result.stdout and "1 skipped" in result.stdout
    assert "broken.jpg" in result.stderr and "Traceback" not in result.stderr

    out = run("search", image_dir / "img05.jpg", "-c", collection, "-k", "3", "--json",
              "--html", tmp_path / "r.html").stdout
    payload = json.loads(out)
    assert payload["results"][0]["path"].endswith("img05.jpg") and payload["results"][0]["rank"] == 1
    assert len(payload["results"]) == 3
    page = (tmp_path / "r.html").read_text()
    assert page.count("data:image/jpeg;base64,") == 4

    lines = run("search", image_dir / "img01.jpg", image_dir / "img02.jpg", "-c", collection,
                "-k", "1", "--json").stdout.splitlines()
    assert [json.loads(line)["results"][0]["path"][-9:] for line in lines] == ["img01.jpg", "img02.jpg"]

    emd = json.loads(run("search", image_dir / "img05.jpg", "-c", collection, "-k", "2",
                         "--json", "--rerank", "emd", "--shortlist", "5").stdout)
    assert emd["results"][0]["path"].endswith("img05.jpg")
    assert emd["results"][0]["score"] == pytest.approx(0.0, abs=1e-6)  # -EMD to itself

    info = json.loads(run("info", collection, "--json").stdout)
    assert info["images"] == 12 and info["descriptor"]["config"]["space"] == "lab"

    assert "removed 1 images; 11 left" in run("remove", image_dir / "img05.jpg", "-c", collection).stdout
    again = run("index", image_dir, "-c", collection)
    assert "1 indexed" in again.stdout and "11 already present" in again.stdout


def test_update_command(tmp_path, image_dir):
    collection = tmp_path / "c"
    run("index", image_dir, "-c", collection, "-d", "edge-hist")
    (image_dir / "img00.jpg").unlink()
    result = run("update", image_dir, "-c", collection)
    assert "1 removed" in result.stdout and "11 images" in result.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["index", "nowhere", "-c", "c"], "nowhere: no such file or folder"),
        (["index", ".", "-c", "c", "-d", "nope"], "unknown descriptor 'nope'; choose one of"),
        (["index", ".", "-c", "c", "-d", "gist", "-s", "blocks=many"], "not a valid int"),
        (["search", "q.jpg", "-c", "missing"], "not a lookalike collection"),
        (["eval", "missing.json"], "no such protocol file"),
    ],
)
def test_bad_arguments_give_one_line_errors(tmp_path, args, message):
    result = subprocess.run([sys.executable, "-m", "lookalike", *args], capture_output=True,
                            text=True, cwd=tmp_path, timeout=60)
    assert result.returncode != 0
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_wrong_descriptor_for_existing_collection(tmp_path, image_dir):
    run("index", image_dir, "-c", tmp_path / "c", "-d", "edge-hist")
    result = run("index", image_dir, "-c", tmp_path / "c", "-d", "gist", ok=False)
    assert result.returncode == 2 and "built with descriptor 'edge-hist'" in result.stderr


def test_search_with_unreadable_query(tmp_path, image_dir):
    run("index", image_dir, "-c", tmp_path / "c", "-d", "edge-hist")
    (tmp_path / "q.jpg").write_text("nope")
    result = run("search", tmp_path / "q.jpg", "-c", tmp_path / "c", ok=False)
    assert result.returncode == 2 and "q.jpg: not an image" in result.stderr


def test_eval_json_rankings_and_plot(tmp_path, image_dir):
    names = sorted(p.name for p in image_dir.iterdir())
    (tmp_path / "images").symlink_to(image_dir)
    protocol = {"imlist": names, "qimlist": names[:3],
                "gnd": [{"ok": [i], "junk": []} for i in range(3)]}
    (tmp_path / "p.json").write_text(json.dumps(protocol))
    result = run("eval", tmp_path / "p.json", "-d", "color-hist", "--json", tmp_path / "e.json",
                 "--save-rankings", "--plot", tmp_path / "pr.png", "--workers", "1")
    assert "mAP 1.0000" in result.stdout
    saved = json.loads((tmp_path / "e.json").read_text())
    assert saved["map"] == 1.0 and len(saved["per_query"]) == 3
    assert saved["per_query"][0] == {"query": names[0], "ap": 1.0, "top1": True}
    assert [r[0] for r in saved["rankings"]] == [0, 1, 2] and len(saved["rankings"][0]) == 12
    assert Image.open(tmp_path / "pr.png").size[0] > 300


def test_help_teaches():
    text = run("--help").stdout
    for command in ("index", "search", "eval", "descriptors", "info", "remove", "update"):
        assert command in text
    assert "gist" in run("descriptors").stdout
    assert "--rerank" in run("search", "--help").stdout


def test_train_then_index_and_search_with_vlad(tmp_path):
    pytest.importorskip("cv2")
    from tests.conftest import scene

    photos = tmp_path / "scenes"
    photos.mkdir()
    for i in range(8):
        scene(i).save(photos / f"s{i}.png")
    out = run("train", photos, "-d", "vlad", "-s", "k=8", "-s", "pca=32", "-o", tmp_path / "v.npz").stdout
    assert "learned vlad (k=8)" in out and f"vocabulary={tmp_path / 'v.npz'}" in out
    run("index", photos, "-c", tmp_path / "c1", "-d", "vlad", "-s", "k=8", "-s", "pca=32",
        "-s", f"vocabulary={tmp_path / 'v.npz'}")
    hits = json.loads(run("search", photos / "s3.png", "-c", tmp_path / "c1", "-k", "1", "--json").stdout)
    assert hits["results"][0]["path"].endswith("s3.png")
    # without a vocabulary, index learns one from the images and keeps it in the collection
    result = run("index", photos, "-c", tmp_path / "c2", "-d", "fisher", "-s", "k=4", "-s", "pca=16")
    assert "learning it from the images" in result.stderr and (tmp_path / "c2" / "vocabulary.npz").exists()
    assert json.loads(run("info", tmp_path / "c2", "--json").stdout)["dim"] == 2 * 4 * 16


def test_analyze_dimensionality(tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    np.save(tmp_path / "d.npy", rng.normal(size=(300, 3)) @ rng.normal(size=(3, 32)))
    result = run("analyze", "dimensionality", "--descriptors", tmp_path / "d.npy", "--out", tmp_path / "plots")
    assert "relative contrast falls" in result.stdout and "first 3 of 32 principal components" in result.stdout
    assert (tmp_path / "plots" / "concentration.png").exists() and (tmp_path / "plots" / "pca_energy.png").exists()
    bad = run("analyze", "dimensionality", "--descriptors", tmp_path / "nope.npy", ok=False)
    assert bad.returncode == 2 and "not a .npy array" in bad.stderr


def test_deep_descriptor_whitened_from_the_command_line(tmp_path):
    from tests.conftest import scene

    training, photos = tmp_path / "training", tmp_path / "photos"
    training.mkdir(), photos.mkdir()
    for i in range(8):
        scene(100 + i).save(training / f"t{i}.jpg")
        scene(i).save(photos / f"p{i}.jpg")
    out = run("train", training, "-d", "gem", "-s", "max_side=128", "--whiten", "--dim", "6",
              "--shrinkage", "0.1", "-o", tmp_path / "w.npz").stdout
    assert "learned a 6-D whitening of gem from 8 images" in out and f"whitening={tmp_path / 'w.npz'}" in out
    run("index", photos, "-c", tmp_path / "c", "-d", "gem", "-s", "max_side=128",
        "-s", f"whitening={tmp_path / 'w.npz'}")
    assert json.loads(run("info", tmp_path / "c", "--json").stdout)["dim"] == 6
    hits = json.loads(run("search", photos / "p3.jpg", "-c", tmp_path / "c", "-k", "1", "--json").stdout)
    assert hits["results"][0]["path"].endswith("p3.jpg")


def test_index_structures_from_the_command_line(tmp_path, image_dir):
    collection = tmp_path / "c"
    run("index", image_dir, "-c", collection, "-d", "color-hist", "--index", "IVF4,Flat")
    info = json.loads(run("info", collection, "--json").stdout)
    assert info["index"] == "IVF4,Flat" and info["index_state"].startswith("exact search until 156 vectors")
    out = run("reindex", collection, "--index", "HNSW8").stdout
    assert "index HNSW8 (trained: IndexIDMap2(IndexHNSWFlat))" in out
    hits = json.loads(run("search", image_dir / "img04.jpg", "-c", collection, "-k", "2", "--ef-search", "8",
                          "--json").stdout)
    assert hits["results"][0]["path"].endswith("img04.jpg")
    wrong = run("search", image_dir / "img04.jpg", "-c", collection, "--nprobe", "4", ok=False)
    assert wrong.returncode == 2 and "nprobe does not apply" in wrong.stderr and "Traceback" not in wrong.stderr
    bad = run("index", image_dir, "-c", tmp_path / "d", "--index", "IVF1024,PQ7", ok=False)
    assert bad.returncode == 2 and "not a multiple of 7" in bad.stderr and not (tmp_path / "d").exists()
    trained = run("reindex", collection, "--index", "IVF2,Flat", "--train-images", image_dir).stdout
    assert "index IVF2,Flat (trained: IndexIVFFlat)" in trained
    plan = run("plan", "--images", "100000000", "--dim", "512", "--ram", "16GB").stdout
    assert "IVF" in plan and "--index IVF" in plan


def test_duplicates(tmp_path, image_dir):
    import csv
    import io

    from tests.conftest import photo

    photo(4).resize((192, 128)).save(image_dir / "img04_large.png")
    json_out = run("duplicates", image_dir, "-d", "color-hist", "--threshold", "0.9", "--json", "--workers", "1",
                   "--html", tmp_path / "d.html")
    payload = json.loads(json_out.stdout)
    assert [[m["path"].rsplit("/", 1)[-1] for m in g] for g in payload["groups"]] == [["img04_large.png", "img04.jpg"]]
    assert "img04_large.png" in (tmp_path / "d.html").read_text()
    run("index", image_dir, "-c", tmp_path / "c", "-d", "color-hist", "--workers", "1")
    rows = list(csv.DictReader(io.StringIO(run("duplicates", "-c", tmp_path / "c", "--threshold", "0.9",
                                               "--csv").stdout)))
    assert [(r["group"], r["rank"], r["path"].rsplit("/", 1)[-1]) for r in rows] == [
        ("1", "1", "img04_large.png"), ("1", "2", "img04.jpg")]
    bad = run("duplicates", "-c", tmp_path / "c", "--preset", "near", ok=False)
    assert bad.returncode == 2 and "give --threshold" in bad.stderr and "Traceback" not in bad.stderr


def test_cross_modal_commands(tmp_path):
    """train-joint, eval-text, reindex --joint, search --text (alone and with an image), caption.

    In-process (typer's runner), so that torch loads once: the commands are the same functions.
    """
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    from typer.testing import CliRunner

    from lookalike.cli import app
    from tests.conftest import captioned_folder

    def invoke(*args):
        result = CliRunner().invoke(app, [str(a) for a in args])
        assert result.exit_code == 0, (result.output, result.exception)
        return result.stdout

    data = captioned_folder(tmp_path / "captions", images=10, train=8)
    model, gem = tmp_path / "joint.pt", ["-d", "gem", "-s", "max_side=64", "-s", "engine=torch", "--workers", "1"]
    out = invoke("train-joint", data, "-o", model, *gem, "--text", "tfidf", "--epochs", "3", "--holdout", "2",
                 "--dim", "8", "--joint-set", "batch_size=4", "--plot", tmp_path / "curve.png")
    assert "best epoch" in out and model.exists() and (tmp_path / "curve.png").stat().st_size > 1000

    assert "t->i" in invoke("eval-text", data, "--joint", model, "--json", tmp_path / "eval.json")
    result = json.loads((tmp_path / "eval.json").read_text())
    assert result["images"] == 2 and result["captions"] == 4
    assert set(result["t2i"]) == set(result["i2t"]) == {"r@1", "r@5", "r@10", "median_rank"}

    collection = tmp_path / "c"
    invoke("index", data / "images", "-c", collection, *gem)
    assert "joint space of 10 images" in invoke("reindex", collection, "--joint", model)
    out = json.loads(invoke("search", "--text", "a red dog", "-c", collection, "-k", "3", "--json"))
    assert len(out["results"]) == 3
    out = json.loads(invoke("search", data / "images" / "p1.jpg", "--text", "snow", "-c", collection, "-k", "2",
                            "--json"))
    assert len(out["results"]) == 2 and "snow" in out["query"]
    (tmp_path / "sentences.txt").write_text("a red dog\na blue car\n\nthe green beach\n")
    lines = invoke("caption", data / "images" / "p0.jpg", "--sentences", tmp_path / "sentences.txt",
                   "-c", collection, "-k", "2").splitlines()
    assert len(lines) == 2 and lines[0].split()[0] == "1"
    listing = invoke("text-encoders")
    assert "minilm:" in listing and "tfidf:" in listing and "min_df = 2" in listing


def test_cross_modal_errors_are_one_line(tmp_path, image_dir):
    run("index", image_dir, "-c", tmp_path / "c", "-d", "color-hist")
    fail = run("search", "--text", "a dog", "-c", tmp_path / "c", ok=False)
    assert fail.returncode == 2 and "carries no joint space" in fail.stderr and "Traceback" not in fail.stderr
