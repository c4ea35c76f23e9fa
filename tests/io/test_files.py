"""Finding image files: odd names, symbolic links, unreadable folders and formats, all reported."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lookalike.descriptors import create
from lookalike.index import Collection
from lookalike.io.files import scan_images
from lookalike.pipelines.indexing import index_paths
from tests.conftest import photo

ROOT = Path(__file__).resolve().parents[2]
CAFE = b"caf\xe9.jpg"  # Latin-1 bytes: not valid UTF-8


def as_user(command: list[str]) -> list[str]:
    """``command`` run without root's power to ignore permissions (in a user namespace if root)."""
    if os.geteuid() != 0:
        return command
    if shutil.which("unshare") is None or subprocess.run(["unshare", "--user", "true"]).returncode:
        pytest.skip("running as root, and no user namespace to drop the privilege in")
    return ["unshare", "--user", *command]


def test_a_name_that_is_not_utf8_is_stored_and_printed_losslessly(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    photo(1).save(folder / "plain.jpg")
    with open(os.path.join(os.fsencode(folder), CAFE), "wb") as f:
        photo(2).save(f, "JPEG")
    with Collection.create(tmp_path / "c", create("edge-hist")) as c:
        report = index_paths(c, [folder], workers=1, progress=False)
        assert report.indexed == 2 and not report.skipped
        again = index_paths(c, [folder], workers=1, progress=False)
        assert again.present == 2
        stored = {os.fsencode(Path(p).name) for p in c.metadata.paths()}
    assert stored == {b"plain.jpg", CAFE}
    with Collection.open(tmp_path / "c") as c:  # read back from SQLite: the very bytes
        assert {os.fsencode(Path(p).name) for p in c.metadata.paths()} == stored

    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "PYTHONIOENCODING": "utf-8"}
    query = os.path.join(os.fsencode(folder), CAFE)
    printed = subprocess.run([sys.executable, "-m", "lookalike", "search", query, "-c", tmp_path / "c", "-k", "1"],
                             capture_output=True, env=env, timeout=120)
    assert printed.returncode == 0, printed.stderr
    assert CAFE in printed.stdout and b"Traceback" not in printed.stderr
    rerun = subprocess.run([sys.executable, "-m", "lookalike", "index", folder, "-c", tmp_path / "c"],
                           capture_output=True, env=env, timeout=120)
    assert rerun.returncode == 0 and b"2 already present" in rerun.stdout, rerun.stderr


def test_symlinks_loops_and_unsupported_formats_are_reported(tmp_path):
    folder, elsewhere = tmp_path / "photos", tmp_path / "elsewhere"
    folder.mkdir(), elsewhere.mkdir()
    photo(1).save(folder / "a.jpg")
    photo(2).save(elsewhere / "b.jpg")
    (folder / "linked").symlink_to(elsewhere)  # followed once
    (elsewhere / "back").symlink_to(folder)  # ... and a loop from inside it back up
    (folder / "self.jpg").symlink_to(folder / "self.jpg")  # a link to itself
    (folder / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")
    (folder / "shot.heic").write_bytes(b"\x00\x00\x00\x18ftypheic")
    (folder / "logo.svg").write_text("<svg/>")
    (folder / "notes.txt").write_text("not an image, not reported")
    scan = scan_images([folder])
    assert sorted(p.name for p in scan.found) == ["a.jpg", "b.jpg"]
    problems = {Path(e.path).name: e.reason for e in scan.problems}
    assert problems == {"back": "symlink loop", "self.jpg": "symlink loop", "gone.jpg": "unreadable",
                        "shot.heic": "unsupported format", "logo.svg": "unsupported format"}
    with Collection.create(tmp_path / "c", create("edge-hist")) as c:
        report = index_paths(c, [folder], workers=1, progress=False)
    assert report.indexed == 2
    assert "5 skipped (2 symlink loop, 1 unreadable, 2 unsupported format)" in report.summary()


def test_an_unreadable_folder_is_reported(tmp_path):
    folder = tmp_path / "photos"
    (folder / "locked").mkdir(parents=True)
    photo(1).save(folder / "a.jpg")
    photo(2).save(folder / "locked" / "b.jpg")
    tmp_path.chmod(0o755), folder.chmod(0o755)
    (folder / "locked").chmod(0)
    try:
        code = (f"import json; from lookalike.io.files import scan_images; s = scan_images([{str(folder)!r}]); "
                "print(json.dumps([[p.name for p in s.found], [[e.path, e.reason, e.detail] for e in s.problems]]))")
        done = subprocess.run(as_user([sys.executable, "-c", code]), capture_output=True, text=True, timeout=60,
                              env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    finally:
        (folder / "locked").chmod(0o755)
    assert done.returncode == 0, done.stderr
    found, problems = json.loads(done.stdout)
    assert found == ["a.jpg"]
    assert problems == [[str(folder / "locked"), "unreadable", "folder: Permission denied"]]
