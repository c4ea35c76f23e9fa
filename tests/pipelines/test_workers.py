"""Worker processes: started from plain scripts, never mistaken for bad images, gone with their
parent, bounded to their share of the cores."""

from __future__ import annotations

import ast
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from lookalike.descriptors import create
from lookalike.pipelines.extract import WorkerError, default_workers, extract
from tests.conftest import photo

ROOT = Path(__file__).resolve().parents[2]


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}


def _readme_python_block() -> str:
    text = (ROOT / "README.md").read_text()
    return re.search(r"```python\n(.*?)```", text, re.S).group(1)


def test_readme_example_runs_as_a_plain_script(tmp_path, image_dir):
    """The README's Python block, saved as a script without a __main__ guard, with several workers."""
    names = sorted(p.name for p in image_dir.iterdir())
    protocol = {"imlist": names, "qimlist": names[:4], "gnd": [{"ok": [i], "junk": []} for i in range(4)]}
    (tmp_path / "images").symlink_to(image_dir)
    (tmp_path / "p.json").write_text(json.dumps(protocol))
    script = _readme_python_block()
    for old, new in [('"photo.jpg"', repr(str(image_dir / "img03.jpg"))),
                     ('"../shared/data/landmarks/full.json"', repr(str(tmp_path / "p.json")))]:
        assert old in script, old
        script = script.replace(old, new)
    assert "__main__" not in script and '"~/photos"' in script
    (tmp_path / "ex.py").write_text(script)
    done = subprocess.run([sys.executable, "ex.py"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300, env={**_env(), "HOME": str(tmp_path)})  # ~/photos is image_dir
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "unreadable" not in done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("12 indexed") and "0 skipped" in lines[0]
    assert ast.literal_eval(lines[1])[0]["path"].endswith("img03.jpg")  # the photo finds itself first
    assert lines[2].split()[0] == "1.0"  # mAP of queries that are database images


def test_descriptor_defined_in_a_script_runs_in_process_with_a_warning(tmp_path, image_dir):
    script = textwrap.dedent(f"""
        import numpy as np
        from lookalike.descriptors.holistic.edges import EdgeHistogram
        from lookalike.pipelines.extract import extract

        class Mine(EdgeHistogram):
            name = "mine"

        paths = sorted(__import__("pathlib").Path({str(image_dir)!r}).glob("*.jpg"))
        results = list(extract(Mine(), paths, workers=2, progress=None))
        print(sum(hasattr(r, "vector") for _, r in results))
    """)
    (tmp_path / "mine.py").write_text(script)
    done = subprocess.run([sys.executable, "mine.py"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, env=_env())
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "12" and "Mine is defined in the __main__ script" in done.stderr


def test_a_worker_that_cannot_build_the_descriptor_is_an_error(image_dir):
    from tests.pipelines.crashing import FailsInWorkers

    paths = sorted(image_dir.glob("*.jpg"))
    with pytest.raises(WorkerError, match="could not build the descriptor.*no model in this process"):
        list(extract(FailsInWorkers(), paths, workers=2, progress=None))


def test_a_worker_that_dies_while_starting_is_an_error(image_dir, monkeypatch):
    from tests.pipelines.dies_on_import import ALLOWED_PID, DiesOnImport

    monkeypatch.setenv(ALLOWED_PID, str(os.getpid()))
    paths = sorted(image_dir.glob("*.jpg"))
    with pytest.raises(WorkerError, match="die while starting"):
        list(extract(DiesOnImport(), paths, workers=2, progress=None))


def _children(pid: int) -> list[int]:
    """Live (not zombie) processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to find the workers")
def test_workers_exit_when_their_parent_is_killed(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(60):
        photo(i, (320, 240)).save(photos / f"p{i:03d}.jpg", quality=85)
    process = subprocess.Popen(
        [sys.executable, "-m", "lookalike", "index", str(photos), "-c", str(tmp_path / "c"), "-d", "gist",
         "--workers", "2"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        env=_env())
    workers: list[int] = []
    deadline = time.time() + 60
    while time.time() < deadline and len(workers) < 2 and process.poll() is None:
        workers = [p for p in _children(process.pid)
                   if b"resource_tracker" not in Path(f"/proc/{p}/cmdline").read_bytes()]
        time.sleep(0.05)
    try:
        assert len(workers) == 2, "the workers did not start"
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        deadline = time.time() + 10
        while time.time() < deadline and any(map(_alive, workers)):
            time.sleep(0.05)
        assert not any(map(_alive, workers)), "workers outlived their parent"
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def thread_limits(descriptor, pixels) -> np.ndarray:
    """What a worker may use: the BLAS pools' sizes and the OpenMP variable (a ``compute``)."""
    from threadpoolctl import threadpool_info

    sizes = [pool["num_threads"] for pool in threadpool_info()]
    return np.array([max(sizes, default=0), int(os.environ.get("OMP_NUM_THREADS", 0))], dtype=np.float32)


def test_workers_use_their_share_of_the_cores_and_give_the_same_vectors(image_dir):
    paths = sorted(image_dir.glob("*.jpg"))[:4]
    share = max(1, default_workers() // 2)
    limits = [r.vector for _, r in extract(create("gist"), paths, workers=2, progress=None, compute=thread_limits)]
    assert all(v.tolist() == [share, share] for v in limits), limits

    from threadpoolctl import threadpool_limits

    gist = create("gist", whitening="")
    in_workers = np.stack([r.vector for _, r in extract(gist, paths, workers=2, progress=None)])
    for threads in (1, 2):
        with threadpool_limits(threads):
            alone = np.stack([r.vector for _, r in extract(gist, paths, workers=1, progress=None)])
        np.testing.assert_array_equal(alone, in_workers)
