"""Ray extraction on a local Ray cluster gives the local engine's vectors and errors."""

from __future__ import annotations

import os

import numpy as np
import pytest

from lookalike.descriptors import create
from lookalike.errors import ImageError
from lookalike.pipelines.extract import extract
from lookalike.scale.ray_extract import LOOPBACK_ONLY

os.environ.setdefault(LOOPBACK_ONLY, "0")  # the test cluster binds to 127.0.0.1 only
ray = pytest.importorskip("ray", reason="the Ray engine needs the scale extra: pip install 'lookalike[scale]'")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_same_vectors_and_errors_as_the_local_engine(local_ray, image_dir):
    from lookalike.scale.ray_extract import extract_ray

    (image_dir / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    paths = sorted(image_dir.iterdir())
    descriptor = create("color-hist")
    local = list(extract(descriptor, paths, workers=1, progress=None))
    remote = list(extract_ray(descriptor, paths, batch_size=3))
    assert [p for p, _ in remote] == [p for p, _ in local] == paths
    for (_, a), (_, b) in zip(local, remote):
        if isinstance(a, ImageError):
            assert isinstance(b, ImageError) and (a.reason, a.path) == (b.reason, b.path)
        else:
            np.testing.assert_array_equal(a.vector, b.vector)
            assert (a.width, a.height) == (b.width, b.height)
    assert sum(isinstance(r, ImageError) for _, r in remote) == 1


def test_index_with_the_ray_engine_stores_the_same_collection(local_ray, image_dir, tmp_path):
    from lookalike.index import Collection
    from lookalike.pipelines.indexing import index_paths

    vectors = {}
    for engine in ("local", "ray"):
        with Collection.create(tmp_path / engine, create("color-hist")) as store:
            report = index_paths(store, [image_dir], workers=1, progress=False, engine=engine)
            assert report.indexed == 12
            ids, stored = store.metadata.vectors()
            vectors[engine] = dict(zip((r["path"] for r in store.lookup(ids)), stored))
    assert vectors["ray"].keys() == vectors["local"].keys()
    for path, vector in vectors["local"].items():
        np.testing.assert_array_equal(vectors["ray"][path], vector)
