"""Re-ranking a collection's search: spatial verification from stored local features, DBA and
diffusion state stored with the collection, the results page's inlier lines, and the CLI."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image, ImageOps

from lookalike.descriptors import create
from lookalike.errors import LookalikeError
from lookalike.index import Collection
from lookalike.pipelines.indexing import index_paths
from lookalike.pipelines.searching import Hit, Searcher, search_image
from tests.conftest import photo

pytest.importorskip("cv2")
from lookalike.descriptors.local.registry import create_local  # noqa: E402

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "clock", "brick", "camera", "coins")


@pytest.fixture(scope="module")
def verified(tmp_path_factory):
    """A color-hist collection of real photos with SIFT features, and a query that is a rotated,
    cropped, recoloured copy of ``chelsea``: colours fail it, geometry does not."""
    data = pytest.importorskip("skimage.data")
    root = tmp_path_factory.mktemp("verified")
    (root / "db").mkdir()
    for name in PHOTOS:
        image = Image.fromarray(np.asarray(getattr(data, name)())).convert("RGB")
        image.thumbnail((320, 320))
        image.save(root / "db" / f"{name}.jpg", quality=90)
    original = Image.open(root / "db" / "chelsea.jpg")
    w, h = original.size
    copy = original.rotate(15, resample=Image.Resampling.BICUBIC).crop((30, 20, w - 20, h - 30))
    ImageOps.colorize(ImageOps.grayscale(copy), "#002060", "#ffe080").save(root / "query.jpg", quality=90)
    with Collection.create(root / "c", create("color-hist"), local_features=create_local("sift")) as c:
        index_paths(c, [root / "db"], workers=1, progress=False)
    return root


def _names(hits):
    return [h.path.rsplit("/", 1)[-1] for h in hits]


def test_spatial_verification_puts_a_geometric_copy_first(verified):
    with Collection.open(verified / "c") as c:
        plain = search_image(c, verified / "query.jpg", k=8)
        assert _names(plain)[0] != "chelsea.jpg"  # the global descriptor alone misses it
        for model in ("affine", "homography"):
            hits = search_image(c, verified / "query.jpg", k=8, rerank="sv", options={"sv_model": model},
                                matches=True)
            assert _names(hits)[0] == "chelsea.jpg", model
            assert hits[0].inliers >= 40 and all(h.inliers < 8 for h in hits[1:])
            # the rest keep their global order
            assert _names(hits)[1:] == [n for n in _names(plain) if n != "chelsea.jpg"]
            # the drawn matches are the ones counted, and only verified hits carry them
            assert len(hits[0].matches.query) == hits[0].inliers
            assert all(h.matches is None for h in hits[1:])
            assert hits[0].matches.result_size == (320, 213)


def test_results_page_draws_inlier_lines_and_escapes_names(verified, tmp_path):
    from lookalike.results_page import MAX_LINES, render

    weird = tmp_path / "a<b>&'c.jpg"
    shutil.copy(verified / "query.jpg", weird)
    with Collection.open(verified / "c") as c:
        hits = Searcher(c, rerank="sv", matches=True)(weird, k=3)
    page = render([(str(weird), hits)], title="t")
    svg = re.findall(r"<svg .*?</svg>", page)
    assert len(svg) == 1  # one verified hit, drawn as a pair
    width, height = map(int, re.search(r"width='(\d+)' height='(\d+)'", svg[0]).groups())
    lines = np.array(re.findall(r"<line x1='([-\d.]+)' y1='([-\d.]+)' x2='([-\d.]+)' y2='([-\d.]+)'/>", svg[0]),
                     dtype=float)
    assert len(lines) == min(hits[0].inliers, MAX_LINES)
    assert (lines[:, [0, 2]] >= -1).all() and (lines[:, [0, 2]] <= width).all()
    assert (lines[:, [1, 3]] >= -1).all() and (lines[:, [1, 3]] <= height).all()
    assert (lines[:, 2] > lines[:, 0]).all()  # from the query (left) to the result (right)
    assert f"{hits[0].inliers} inliers" in page
    assert "a&lt;b&gt;&amp;&#x27;c.jpg" in page and "a<b>" not in page


def test_keypoints_are_scaled_from_the_described_image_to_the_thumbnail():
    from lookalike.results_page import _scaled

    # pixel centres: x = 9.5 in a 20-wide image is the 10.5 / 20 point, 4.5 in a 10-wide one
    np.testing.assert_allclose(_scaled(np.array([[9.5, 4.5], [-0.5, -0.5]]), (20, 10), (10, 5)),
                               [[4.5, 2.0], [-0.5, -0.5]])


@pytest.fixture
def plain(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(12):
        photo(i).save(folder / f"p{i:02d}.jpg", quality=90)
    with Collection.create(tmp_path / "c", create("color-hist")) as c:
        index_paths(c, [folder], workers=1, progress=False)
    return tmp_path


def _state(path):
    with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def test_dba_and_diffusion_state_is_stored_reused_and_rebuilt_when_the_collection_changes(plain):
    from lookalike.rerank.diffusion import knn_graph
    from lookalike.rerank.expansion import database_augmentation

    folder, path = plain / "photos", plain / "c"
    options = {"dba_k": 3, "diffusion_k": 4}
    with Collection.open(path) as c:
        searcher = Searcher(c, rerank="dba,qe,diffusion", options=options)
        ids, vectors = c.metadata.vectors()
        generation = c.metadata.generation
        dba, graph = _state(path / "dba.npz"), _state(path / "diffusion.npz")
        assert int(dba["generation"]) == int(graph["generation"]) == generation
        np.testing.assert_allclose(dba["vectors"], database_augmentation(vectors, 3, 0.0), atol=1e-6)
        qe = searcher.steps.steps[1]
        np.testing.assert_array_equal(qe.database_, dba["vectors"])  # QE after DBA expands from augmented vectors
        expected = knn_graph(dba["vectors"], 4, 3.0)
        np.testing.assert_array_equal(graph["indptr"], expected.indptr)
        np.testing.assert_allclose(graph["data"], expected.data, rtol=1e-6)
        before = [(path / f).read_bytes() for f in ("dba.npz", "diffusion.npz")]
        assert "p03.jpg" in _names(searcher(folder / "p03.jpg", k=3))
        Searcher(c, rerank="dba,qe,diffusion", options=options)(folder / "p07.jpg", k=3)  # reads, not rebuilds
        assert [(path / f).read_bytes() for f in ("dba.npz", "diffusion.npz")] == before  # queries change nothing

    for i in (20, 21, 22):
        photo(i).save(folder / f"new{i}.jpg", quality=90)
    with Collection.open(path, writable=True) as c:
        index_paths(c, [folder], workers=1, progress=False)
        c.remove([str(folder / "p00.jpg")])
    with Collection.open(path) as c:
        hits = search_image(c, folder / "new21.jpg", k=2, rerank="dba,qe", options=options)
        assert _names(hits)[0] == "new21.jpg"
        search_image(c, folder / "new21.jpg", k=2, rerank="dba,qe,diffusion", options=options)
        generation = c.metadata.generation
    dba, graph = _state(path / "dba.npz"), _state(path / "diffusion.npz")
    assert int(dba["generation"]) == int(graph["generation"]) == generation
    assert dba["vectors"].shape[0] == 14 and tuple(graph["shape"]) == (14, 14)
    # other options are other state: rebuilt, not mistaken for the stored one
    with Collection.open(path) as c:
        Searcher(c, rerank="dba", options={"dba_k": 5})
    assert json.loads(str(_state(path / "dba.npz")["params"]))["k"] == 5


def test_bad_combinations_are_one_line_errors(plain):
    with Collection.open(plain / "c") as c:
        with pytest.raises(LookalikeError, match="created without them: re-create it with .*--local-features"):
            Searcher(c, rerank="sv,qe")
        with pytest.raises(LookalikeError, match="emd re-ranks alone"):
            Searcher(c, rerank="emd,qe")
        with pytest.raises(LookalikeError, match="unknown re-ranking step 'magic'"):
            Searcher(c, rerank="qe,magic")
        with pytest.raises(LookalikeError, match="list it before them"):
            Searcher(c, rerank="qe,dba")
    result = _cli("search", plain / "photos" / "p01.jpg", "-c", plain / "c", "--rerank", "sv")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and "--local-features" in result.stderr


def test_cli_search_with_sv_and_qe(verified, tmp_path):
    result = _cli("search", verified / "query.jpg", "-c", verified / "c", "-k", "3", "--rerank", "sv,qe",
                  "--qe-k", "2", "--alpha", "3", "--model", "affine", "--inlier-ratio", "0.05",
                  "--inlier-weight", "0.1", "--json", "--html", tmp_path / "r.html")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    top = payload["results"][0]
    assert top["path"].endswith("chelsea.jpg") and top["inliers"] >= 40
    assert "<line " in (tmp_path / "r.html").read_text()
    prepared = _cli("rerank-prepare", verified / "c", "--rerank", "dba,qe")
    assert prepared.returncode == 0 and "dba.npz up to date" in prepared.stdout


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "lookalike", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def test_hit_defaults_keep_old_callers_working():
    assert Hit(1, "x.jpg", 0.5, 3).inliers is None


def test_verification_after_expansion_reads_the_candidates_it_brought_in(verified):
    from lookalike.pipelines.collection_rerank import CollectionReranker

    with Collection.open(verified / "c") as c:
        ids, _ = c.metadata.vectors()
        candidates = CollectionReranker(c, "qe,sv").local
        candidates.fetch(ids[:2])  # the first ranking's
        np.testing.assert_array_equal(candidates[int(ids[5])].keypoints, c.local_features([ids[5]])[0].keypoints)
        hits = search_image(c, verified / "query.jpg", k=3, rerank="qe,sv", options={"qe_k": 1})
    assert _names(hits)[0] == "chelsea.jpg" and hits[0].inliers >= 40
