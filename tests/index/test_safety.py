"""Collections that are moved, damaged, read-only or planted with code: kept files and their
checksums, faiss files rebuilt from SQLite, one-line verdicts, nothing written, nothing imported."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lookalike.descriptors import create
from lookalike.errors import CollectionError, LookalikeError
from lookalike.index import Collection
from lookalike.index.structures import check_builds
from lookalike.pipelines.indexing import index_paths
from lookalike.pipelines.searching import search_image
from lookalike.postprocess.whitening import PCAWhitening
from tests.conftest import photo
from tests.index.test_collection import entries
from tests.io.test_files import as_user

ROOT = Path(__file__).resolve().parents[2]
DIM = create("edge-hist").dim


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "lookalike", *map(str, args)], capture_output=True, text=True,
                          timeout=120, cwd=cwd, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})


def whitening_file(path: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    PCAWhitening(16).fit(rng.normal(size=(300, DIM)) @ rng.normal(size=(DIM, DIM))).save(path)
    return path


def test_a_collection_keeps_its_files_and_can_be_moved(tmp_path, image_dir, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    whitening_file(work / "w.npz")
    monkeypatch.chdir(work)  # a relative path, as a user types it
    descriptor = create("edge-hist", whitening="w.npz")
    with Collection.create(tmp_path / "c", descriptor) as c:
        index_paths(c, [image_dir], workers=2, progress=False)
    manifest = json.loads((tmp_path / "c" / "manifest.json").read_text())
    assert manifest["descriptor"]["config"]["whitening"] == "whitening.npz"
    assert list(manifest["files"]) == ["whitening.npz"] and len(manifest["files"]["whitening.npz"]) == 64
    whitening_file(work / "w.npz", seed=1)  # the original changes: the collection kept its own copy

    (tmp_path / "c").rename(tmp_path / "moved")
    monkeypatch.chdir(tmp_path)
    with Collection.open(tmp_path / "moved", writable=True) as c:
        assert c.descriptor.config.whitening == str(tmp_path / "moved" / "whitening.npz")
        hits = search_image(c, image_dir / "img05.jpg", k=1)
        assert hits[0].path.endswith("img05.jpg") and hits[0].score == pytest.approx(1.0, abs=1e-5)
        photo(50).save(image_dir / "new.jpg")  # described by workers, with the kept whitening
        assert index_paths(c, [image_dir], workers=2, progress=False).indexed == 1
        assert search_image(c, image_dir / "new.jpg", k=1)[0].score == pytest.approx(1.0, abs=1e-5)
    # the same options, by content, are accepted for more indexing; another whitening is not
    with Collection.open(tmp_path / "moved", descriptor=create("edge-hist", whitening=str(tmp_path / "moved" /
                                                                                          "whitening.npz"))):
        pass
    with pytest.raises(CollectionError, match="built with edge-hist config"):
        Collection.open(tmp_path / "moved", descriptor=create("edge-hist", whitening=str(work / "w.npz")))

    whitening_file(tmp_path / "moved" / "whitening.npz", seed=2)  # the kept copy changes
    with pytest.raises(CollectionError, match=r"whitening.npz: changed since the collection was built"):
        Collection.open(tmp_path / "moved")


def test_update_follows_swapped_files_and_a_renamed_folder_without_describing(tmp_path, image_dir):
    with Collection.create(tmp_path / "c", create("edge-hist")) as c:
        index_paths(c, [image_dir], workers=1, progress=False)
        before = {digest: ident for ident, digest in
                  ((row["id"], row["sha256"]) for row in c.lookup(c.metadata.vectors()[0]))}
        a, b = image_dir / "img01.jpg", image_dir / "img02.jpg"
        data_a, data_b = a.read_bytes(), b.read_bytes()
        a.write_bytes(data_b), b.write_bytes(data_a)
        report = index_paths(c, [image_dir], workers=1, progress=False, prune=True)
        assert (report.moved, report.indexed, report.updated, report.duplicates) == (2, 0, 0, [])
        assert Path(search_image(c, a, k=1)[0].path) == a

        renamed = image_dir.rename(tmp_path / "renamed")
        report = index_paths(c, [renamed], workers=1, progress=False, prune=True)
        assert (report.moved, report.indexed, report.updated, report.present) == (12, 0, 0, 0)
        assert c.metadata.under(str(image_dir)) == [] and len(c.metadata.under(str(renamed))) == 12
        after = {row["sha256"]: row["id"] for row in c.lookup(c.metadata.vectors()[0])}
    assert after == before  # same ids, same vectors: nothing was described again


def _collection(tmp_path: Path, n: int = 30) -> tuple[Path, np.ndarray]:
    rows = entries(n)
    with Collection.create(tmp_path / "c", create("edge-hist")) as c:
        c.write(rows)
    return tmp_path / "c", np.stack([r.vector for r in rows])


def test_an_overwritten_or_truncated_faiss_file_is_rebuilt_from_sqlite(tmp_path):
    folder, vectors = _collection(tmp_path)
    (faiss_file,) = folder.glob("index-*.faiss")
    with Collection.create(tmp_path / "small", create("edge-hist")) as small:
        small.write(entries(3))
    shutil.copyfile(next((tmp_path / "small").glob("index-*.faiss")), faiss_file)  # valid, but not ours
    with Collection.open(folder) as c:
        assert len(c) == 30 and c.damaged == faiss_file.name and c.rebuilt
        assert c.search(vectors[:5], 1)[1][:, 0].tolist() == c.metadata.vectors()[0][:5].tolist()
    data = faiss_file.read_bytes()
    faiss_file.write_bytes(data[: len(data) // 3])
    done = cli("reindex", folder, "--index", "Flat")
    assert done.returncode == 0 and "30 images" in done.stdout, done.stderr
    with Collection.open(folder) as c:  # reindex saved a sound file again
        assert len(c) == 30 and not c.damaged and not c.rebuilt


def test_a_damaged_trained_structure_is_retrained(tmp_path):
    rows = entries(100)
    with Collection.create(tmp_path / "c", create("edge-hist"), index="IVF2,Flat") as c:
        c.write(rows)
        assert not c.exact
    for name in ("trained.faiss", *(p.name for p in (tmp_path / "c").glob("index-*.faiss"))):
        (tmp_path / "c" / name).write_bytes(b"\0" * 100)
    with Collection.open(tmp_path / "c", writable=True) as c:
        assert len(c) == 100 and c.rebuilt and not c.exact
        assert c.search(rows[7].vector, 1, nprobe=2)[1][0, 0] == c.metadata.vectors()[0][7]
    with Collection.open(tmp_path / "c") as c:  # the retrained structure was saved, with its checksum
        assert not c.rebuilt and not c.damaged and len(c) == 100


@pytest.mark.parametrize("damage, message", [
    (lambda f: f.write_bytes(b""), "empty (0 bytes)"),
    (lambda f: f.write_bytes(f.read_bytes()[:4096]), "truncated (4,096 of"),
    (lambda f: f.write_bytes(b"x" * 5000), "not an SQLite database"),
])
def test_a_damaged_metadata_file_is_a_one_line_error(tmp_path, damage, message):
    folder, _ = _collection(tmp_path, n=300)
    damage(folder / "metadata.sqlite")
    with pytest.raises(CollectionError, match=re.escape(message)):
        Collection.open(folder)
    done = cli("search", ROOT / "README.md", "-c", folder)
    assert done.returncode == 2 and message in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_a_read_only_collection_can_be_searched_and_is_never_written(tmp_path, image_dir):
    folder = tmp_path / "c"
    assert cli("index", image_dir, "-c", folder, "-d", "edge-hist").returncode == 0
    snapshot = {p.name: p.read_bytes() for p in folder.iterdir()}
    for p in folder.iterdir():
        p.chmod(0o444)
    folder.chmod(0o555)
    try:
        done = subprocess.run(as_user([sys.executable, "-m", "lookalike", "search", str(image_dir / "img04.jpg"),
                                       "-c", str(folder), "-k", "1", "--json"]),
                              capture_output=True, text=True, timeout=120,
                              env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    finally:
        folder.chmod(0o755)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["results"][0]["path"].endswith("img04.jpg")
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == snapshot  # no lock file, nothing changed


@pytest.mark.parametrize("factory", ["HNSW0", "IDMap,Flat", "IVF0,Flat", "PQ0", "PCA0,Flat", "IVF16,PQ8x0"])
def test_bad_structures_are_refused_before_faiss_sees_them(tmp_path, factory):
    with pytest.raises(LookalikeError, match="index"):
        check_builds(factory, DIM)
    with pytest.raises(LookalikeError):
        Collection.create(tmp_path / "c", create("edge-hist"), index=factory)
    assert not (tmp_path / "c").exists()


def test_cli_refuses_a_bad_structure_before_anything_is_written(tmp_path, image_dir):
    for factory in ("HNSW0", "IDMap,Flat"):
        done = cli("index", image_dir, "-c", tmp_path / "c", "-d", "edge-hist", "--index", factory)
        assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert not (tmp_path / "c").exists()


def test_opening_a_collection_never_imports_a_module_it_names(tmp_path):
    folder, _ = _collection(tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["descriptor"] = {"name": "evil", "class": "evilmod:Evil", "config": {}}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / "evilmod.py").write_text("open('PWNED', 'w').close()\nclass Evil: pass\n")
    done = cli("info", ".", cwd=folder)  # the folder is on sys.path as the current directory
    assert done.returncode == 2 and "unknown descriptor 'evil'" in done.stderr
    assert not (folder / "PWNED").exists()


def test_nothing_a_collection_loads_is_unpickled():
    for path in (ROOT / "src").rglob("*.py"):
        text = path.read_text()
        assert not re.search(r"^\s*import pickle|^\s*from pickle|pickle\.loads?\(", text, re.M), path
        for call in re.findall(r"np\.load\([^)]*\)", text):
            assert "allow_pickle=False" in call, (path, call)
        for call in re.findall(r"torch\.load\([^)]*\)", text):
            assert "weights_only=True" in call, (path, call)
