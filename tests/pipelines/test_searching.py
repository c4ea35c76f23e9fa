"""Searching a collection with an image: on the ONNX engine, a search process never loads torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lookalike.descriptors import create
from lookalike.descriptors.cnn.engine import onnx_available
from lookalike.index import Collection
from lookalike.pipelines.indexing import index_paths
from lookalike.pipelines.searching import search_image
from tests.conftest import scene

ROOT = Path(__file__).resolve().parents[2]

#: ``python -m lookalike ARGS``, then the names of the heavy modules it imported, on stderr
CLI_THEN_MODULES = ("import runpy, sys\nsys.argv = ['lookalike', *sys.argv[1:]]\n"
                    "try:\n    runpy.run_module('lookalike', run_name='__main__')\n"
                    "finally:\n    print('MODULES', sorted(m for m in ('torch', 'scipy', 'cv2') if m in sys.modules),"
                    " file=sys.stderr)")


@pytest.mark.skipif(not onnx_available(), reason="needs onnxruntime and onnx")
@pytest.mark.parametrize("scales", [(1.0, 0.7071, 0.5), (1.0,)], ids=["default three scales", "gem"])
def test_a_cli_search_on_the_onnx_engine_never_imports_torch(tmp_path, scales):
    (tmp_path / "images").mkdir()
    for s in range(6):
        scene(s, (128, 96)).save(tmp_path / "images" / f"scene{s}.jpg")
    # indexing in this process exports the ONNX graph into the test session's model cache, with torch
    with Collection.create(tmp_path / "c", create("gem", max_side=128, scales=scales)) as c:
        index_paths(c, [tmp_path / "images"], workers=1, progress=False)
    with Collection.open(tmp_path / "c") as c:
        expected = search_image(c, tmp_path / "images" / "scene3.jpg", k=3)
    done = subprocess.run(
        [sys.executable, "-c", CLI_THEN_MODULES, "search", str(tmp_path / "images" / "scene3.jpg"),
         "-c", str(tmp_path / "c"), "-k", "3", "--json"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert done.returncode == 0, done.stderr
    assert "MODULES []" in done.stderr  # neither torch nor scipy nor OpenCV
    results = json.loads(done.stdout)["results"]
    assert [r["path"] for r in results] == [h.path for h in expected]
    assert [r["score"] for r in results] == pytest.approx([h.score for h in expected], abs=1e-5)
    assert results[0]["path"].endswith("scene3.jpg") and results[0]["score"] == pytest.approx(1.0, abs=1e-5)
