"""Re-ranking end to end on a small real subset of landmarks: spatial verification and QE lift mAP."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lookalike.descriptors import create
from lookalike.descriptors.local.registry import create_local
from lookalike.io.protocol import load_protocol
from lookalike.pipelines.evaluation import evaluate_descriptor
from lookalike.rerank.steps import parse_steps

pytest.importorskip("cv2")
pytest.importorskip("faiss")

QUERIES = [5, 7, 15, 17, 25, 27, 35, 37]  # two queries from each of four scenes
DISTRACTORS = 30


@pytest.fixture(scope="module")
def subset(shared_data, tmp_path_factory):
    """A protocol file over a few landmarks queries, their scenes' images and some distractors."""
    full = json.loads((shared_data / "landmarks/full.json").read_text())
    keep = sorted({i for q in QUERIES for key in ("ok", "junk") for i in full["gnd"][q][key]})
    others = [i for i, name in enumerate(full["imlist"]) if name.startswith("bsds")][:DISTRACTORS]
    imlist = [full["imlist"][i] for i in keep + others]
    row = {name: i for i, name in enumerate(imlist)}
    gnd = [{key: [row[full["imlist"][i]] for i in full["gnd"][q][key]] for key in ("ok", "junk")} for q in QUERIES]
    path = tmp_path_factory.mktemp("protocol") / "subset.json"
    path.write_text(json.dumps({"name": "landmarks-subset", "imlist": imlist,
                                "qimlist": [full["qimlist"][q] for q in QUERIES], "gnd": gnd}))
    return path, shared_data / "landmarks/images"


def test_spatial_verification_and_query_expansion_lift_map(subset):
    path, images = subset
    protocol = load_protocol(path, images)
    result = evaluate_descriptor(protocol, create("color-hist"), workers=1, progress=False,
                                 rerank=parse_steps("sv,qe", rerank_top=40), local_features=create_local("sift"))
    before, after = result["rerank"]["map_before"], result["map"]
    print(before, after)
    assert after > before + 0.05
    assert result["rerank"]["steps"] == ["SpatialVerification", "QueryExpansion"]
    assert result["rerank"]["ms_per_query"] > 0 and result["rerank"]["keypoints_per_image"] > 100


def test_eval_rerank_command(subset, tmp_path):
    path, images = subset
    out = subprocess.run([sys.executable, "-m", "lookalike", "eval", str(path), "--images", str(images),
                          "-d", "color-hist", "--rerank", "dba,qe", "--qe-k", "3", "--json", str(tmp_path / "e.json"),
                          "--workers", "1"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "re-ranked by DatabaseAugmentation + QueryExpansion" in out.stdout
    assert json.loads((tmp_path / "e.json").read_text())["rerank"]["ms_per_query"] > 0
    bad = subprocess.run([sys.executable, "-m", "lookalike", "eval", str(path), "--images", str(images),
                          "-d", "color-hist", "--rerank", "sv,qe"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        "error: --rerank sv needs local features: add --local-features sift (or delf)"]
