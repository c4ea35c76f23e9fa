"""The command line refuses bad arguments up front, in one line, and reports partial failures."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lookalike.evaluate.dimensionality import compare_contrast
from tests.test_cli import run


@pytest.fixture
def collection(tmp_path, image_dir):
    run("index", image_dir, "-c", tmp_path / "c", "-d", "edge-hist", "--workers", "1")
    return tmp_path / "c"


@pytest.mark.parametrize("args, message", [
    (["index", ".", "-c", "c", "--max-pixels", "-1"], "'--max-pixels'"),
    (["index", ".", "-c", "c", "--workers", "0"], "'--workers'"),
    (["index", ".", "-c", "c", "--batch-size", "0"], "'--batch-size'"),
    (["search", "q.jpg", "-c", "c", "--shortlist", "0"], "'--shortlist'"),
    (["search", "q.jpg", "-c", "c", "-k", "0"], "'-k'"),
    (["search", "q.jpg", "-c", "c", "--nprobe", "0"], "'--nprobe'"),
    (["index", ".", "-c", "c", "--engine", "bogus"], "'--engine'"),
    (["search", "q.jpg", "-c", "c", "--qe-k", "0"], "'--qe-k'"),
    (["plan", "--images", "0", "--dim", "8"], "'--images'"),
    (["index", ".", "-c", "c", "-d", "color-hist", "-s", "bins=1000,1000,1000"], "from 1 to 256"),
    (["index", "."], "Missing option '--collection'"),
    (["frobnicate"], "No such command"),
])
def test_bad_arguments_are_refused_in_one_line(tmp_path, args, message):
    result = subprocess.run([sys.executable, "-m", "lookalike", *args], capture_output=True, text=True,
                            cwd=tmp_path, timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "c").exists()


def test_a_huge_k_is_capped_at_the_collection_size(collection, image_dir):
    payload = json.loads(run("search", image_dir / "img02.jpg", "-c", collection, "-k", 10**12, "--json").stdout)
    assert len(payload["results"]) == 12


def test_outputs_are_checked_before_the_work(tmp_path, collection, image_dir):
    bad = run("search", image_dir / "img02.jpg", "-c", collection, "--html", tmp_path / "no" / "r.html", ok=False)
    assert bad.returncode == 2 and "folder" in bad.stderr and "does not exist" in bad.stderr
    assert bad.stdout == ""  # refused before searching
    bad = run("eval", tmp_path / "missing.json", "--json", tmp_path / "no" / "e.json", ok=False)
    assert bad.returncode == 2 and "--json" in bad.stderr and "does not exist" in bad.stderr


def test_one_bad_query_among_several_is_reported_and_the_page_written(tmp_path, collection, image_dir):
    (tmp_path / "bad.jpg").write_text("not an image")
    result = run("search", image_dir / "img01.jpg", tmp_path / "bad.jpg", image_dir / "img03.jpg", "-c",
                 collection, "-k", "2", "--html", tmp_path / "r.html", ok=False)
    assert result.returncode == 2
    assert "bad.jpg: not an image" in result.stderr and "Traceback" not in result.stderr
    assert "img01.jpg:" in result.stdout and "img03.jpg:" in result.stdout
    assert (tmp_path / "r.html").read_text().count("data:image/jpeg;base64,") == 2 * 3


@pytest.mark.parametrize("protocol, message", [
    ({"imlist": ["a.jpg"], "qimlist": [], "gnd": []}, "qimlist is empty"),
    ({"imlist": ["a.jpg", 7], "qimlist": ["a.jpg"], "gnd": [{"ok": [0]}]}, "imlist[1] is 7, not an image path"),
    ({"imlist": ["a.jpg"], "qimlist": [None], "gnd": [{"ok": [0]}]}, "qimlist[0] is None"),
])
def test_bad_protocols_are_one_line_errors(tmp_path, protocol, message):
    (tmp_path / "images").mkdir()
    (tmp_path / "p.json").write_text(json.dumps(protocol))
    result = run("eval", tmp_path / "p.json", ok=False)
    assert result.returncode == 2 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_dimensionality_text_follows_its_numbers():
    assert "less contrast than uniform" in compare_contrast(0.08, 1.03, 2048)
    assert "12.9x less" in compare_contrast(0.08, 1.03, 2048)
    assert "more contrast than uniform" in compare_contrast(1.5, 0.1, 512)
    assert "a little more contrast" in compare_contrast(0.12, 0.1, 512)


def test_version_info_and_descriptors_read_well(collection):
    from lookalike import __version__

    assert run("--version").stdout.strip() == f"lookalike {__version__}"
    summary = run("info", collection).stdout
    assert summary.splitlines()[0] == f"{collection}: 12 images"
    assert "descriptor: edge-hist (128-D;" in summary and "index: Flat, exact inner product" in summary
    assert json.loads(run("info", collection, "--json").stdout)["images"] == 12
    listing = [line for line in run("descriptors").stdout.splitlines() if not line.startswith(" ")]
    assert "edge-hist (128-D): shapes and layout regardless of colour; tiny and fast" in listing
    assert any(line.startswith("vlad (8192-D with k=64; grows with the vocabulary size k): ") for line in listing)
    from lookalike.descriptors import descriptor_class

    for line in listing:  # every built-in descriptor gives its advice
        advice = descriptor_class(line.split()[0]).advice
        assert advice and line.endswith(": " + advice), line


def test_progress_bars_only_on_a_terminal(tmp_path, image_dir):
    result = run("index", image_dir, "-c", tmp_path / "c", "-d", "edge-hist", "--workers", "1")
    assert "\r" not in result.stderr and "indexing" not in result.stderr and "hashing" not in result.stderr
