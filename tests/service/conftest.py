"""A small real collection to serve, and the app over it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import photo

pytest.importorskip("fastapi", reason="the service tests need the serve extra: pip install 'lookalike[serve]'")

API_KEY = "test-key-0123456789"


@pytest.fixture(scope="session")
def served_photos(tmp_path_factory) -> Path:
    """12 distinct photos plus two edited copies of photo 0 (a crop and a smaller re-encoding)."""
    folder = tmp_path_factory.mktemp("served") / "photos"
    folder.mkdir()
    for i in range(12):
        photo(i, (160, 120)).save(folder / f"img{i:02d}.jpg", quality=92)
    original = photo(0, (160, 120))
    original.crop((4, 3, 156, 117)).save(folder / "img00_crop.jpg", quality=92)
    original.resize((120, 90)).save(folder / "img00_small.jpg", quality=80)
    return folder


@pytest.fixture(scope="session")
def collection_template(served_photos, tmp_path_factory) -> Path:
    from lookalike.descriptors import create
    from lookalike.index import Collection
    from lookalike.pipelines.indexing import index_paths

    path = tmp_path_factory.mktemp("template") / "photos"
    with Collection.create(path, create("color-hist")) as store:
        index_paths(store, [served_photos], workers=1, progress=False)
    return path


@pytest.fixture
def collection_dir(collection_template, tmp_path) -> Path:
    """A fresh copy of the collection for each test (writes change it)."""
    target = tmp_path / "photos"
    shutil.copytree(collection_template, target, ignore=shutil.ignore_patterns("lock"))
    return target


@pytest.fixture
def client(collection_dir):
    from fastapi.testclient import TestClient

    from lookalike.service import ServiceConfig, create_app

    app = create_app(ServiceConfig(collections=(collection_dir,), api_key=API_KEY, max_upload_bytes=200_000,
                                   max_pixels=1_000_000, threads=2))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def live_server(collection_template, tmp_path_factory):
    """``lookalike serve`` in a subprocess on 127.0.0.1 and a free port; yields its base URL."""
    import os
    import subprocess
    import sys
    import time

    import httpx

    folder = tmp_path_factory.mktemp("live") / "photos"
    shutil.copytree(collection_template, folder, ignore=shutil.ignore_patterns("lock"))
    port = free_port()
    log = open(folder.parent / "server.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "lookalike", "serve", "-c", str(folder), "--host", "127.0.0.1", "--port", str(port),
         "--threads", "2"], stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "LOOKALIKE_API_KEY": API_KEY})
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            if server.poll() is not None:
                raise RuntimeError(f"lookalike serve exited: {(folder.parent / 'server.log').read_text()}")
            try:
                if httpx.get(url + "/api/collections", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise RuntimeError("lookalike serve did not answer within a minute")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
