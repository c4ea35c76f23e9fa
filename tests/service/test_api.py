"""The JSON API through httpx's test client, on a real collection (gist, SQLite, faiss)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tests.conftest import photo
from tests.service.conftest import API_KEY


def jpeg_bytes(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def ids_by_name(client) -> dict[str, int]:
    """Every stored image's id, by file name (through "more like this" of a known id)."""
    found = {}
    for ident in range(1, 40):
        response = client.get(f"/api/collections/photos/images/{ident}")
        if response.status_code == 200:
            found[response.json()["name"]] = ident
    return found


def test_collections_and_info(client):
    listing = client.get("/api/collections").json()
    assert listing == [{"name": "photos", "images": 14, "descriptor": "color-hist", "index": "Flat"}]
    info = client.get("/api/collections/photos").json()
    assert info["images"] == 14 and info["descriptor"]["name"] == "color-hist"


def test_search_by_upload_finds_the_original_and_its_copies(client):
    query = jpeg_bytes(photo(0, (160, 120)).resize((140, 105)), quality=70)
    response = client.post("/api/collections/photos/search", files={"image": ("q.jpg", query, "image/jpeg")},
                           data={"k": "3"})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["rank"] for r in results] == [1, 2, 3]
    assert {r["name"] for r in results} == {"img00.jpg", "img00_crop.jpg", "img00_small.jpg"}
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True)


def test_threshold_drops_low_scores(client):
    query = jpeg_bytes(photo(0, (160, 120)))
    everything = client.post("/api/collections/photos/search", files={"image": ("q.jpg", query)},
                             data={"k": "14"}).json()["results"]
    cut = everything[5]["score"]
    kept = client.post("/api/collections/photos/search", files={"image": ("q.jpg", query)},
                       data={"k": "14", "threshold": str(cut)}).json()["results"]
    assert len(kept) == 6 and all(r["score"] >= cut for r in kept)


def test_more_like_this_matches_the_library_and_excludes_the_query(client, collection_dir):
    from lookalike.index import Collection

    ids = ids_by_name(client)
    response = client.get(f"/api/collections/photos/images/{ids['img00.jpg']}/similar", params={"k": 2})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert {r["name"] for r in results} == {"img00_crop.jpg", "img00_small.jpg"}
    with Collection.open(collection_dir) as store:  # the same scores as the library gives
        vector = store.metadata.vectors_of(np.array([ids["img00.jpg"]]))
        scores, found = store.search(vector, 3)
    assert [r["id"] for r in results] == list(found[0][1:])
    np.testing.assert_allclose([r["score"] for r in results], scores[0][1:], rtol=1e-6)


def test_image_files_are_served_by_id_only(client, served_photos):
    ids = ids_by_name(client)
    whole = client.get(f"/api/collections/photos/images/{ids['img03.jpg']}/file")
    assert whole.status_code == 200
    assert whole.content == (served_photos / "img03.jpg").read_bytes()
    thumb = client.get(f"/api/collections/photos/images/{ids['img03.jpg']}/file", params={"size": 32})
    assert thumb.headers["content-type"] == "image/jpeg"
    assert max(Image.open(io.BytesIO(thumb.content)).size) == 32
    assert client.get("/api/collections/photos/images/9999/file").status_code == 404
    # a path never reaches the filesystem: non-integer ids are refused by validation
    for probe in ("..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", "1%2F..%2F..%2Fmanifest.json"):
        response = client.get(f"/api/collections/photos/images/{probe}/file")
        assert response.status_code in (404, 422) and b"root:" not in response.content
    assert client.get("/static/../manifest.json").status_code == 404


def test_errors_are_json_with_a_status(client):
    cases = [
        client.get("/api/collections/nope"),
        client.post("/api/collections/photos/search", files={"image": ("q.jpg", b"not an image")}),
        client.post("/api/collections/photos/search", files={"image": ("q.jpg", b"")}),
        client.post("/api/collections/photos/search", data={"k": "3"}),
        client.post("/api/collections/photos/search", files={"image": ("q.jpg", jpeg_bytes(photo(1)))},
                    data={"k": "0"}),
        client.get("/no/such/page"),
    ]
    assert [r.status_code for r in cases] == [404, 400, 400, 400, 422, 404]
    for response in cases:
        body = response.json()
        assert body["status"] == response.status_code and body["error"]
        assert "Traceback" not in response.text


def test_uploads_are_limited_in_bytes_and_pixels(client):
    big = np.random.default_rng(0).integers(0, 256, (400, 400, 3), dtype=np.uint8)
    too_many_bytes = io.BytesIO()
    Image.fromarray(big).save(too_many_bytes, "PNG")  # ~480 kB > the 200 kB limit
    response = client.post("/api/collections/photos/search", files={"image": ("big.png", too_many_bytes.getvalue())})
    assert response.status_code == 413 and "bytes" in response.json()["error"]
    bomb = jpeg_bytes(Image.new("RGB", (1200, 1000)), quality=10)  # small file, 1.2 Mpixels > 1 M
    response = client.post("/api/collections/photos/search", files={"image": ("bomb.jpg", bomb)})
    assert response.status_code == 413 and "too large" in response.json()["error"]


def test_features_a_collection_lacks_say_so(client):
    response = client.post("/api/collections/photos/search", data={"text": "a red boat"})
    assert response.status_code == 400 and "not available" in response.json()["error"]
    response = client.post("/api/collections/photos/search", files={"image": ("q.jpg", jpeg_bytes(photo(1)))},
                           data={"rerank": "sv"})  # a re-ranking this collection cannot do: no local features
    assert response.status_code == 400 and "--rerank sv needs local features" in response.json()["error"]
    response = client.post("/api/collections/photos/search", files={"image": ("q.jpg", jpeg_bytes(photo(1)))},
                           data={"rerank": "emd", "k": "3"})  # one it can: scores are then -EMD
    assert response.status_code == 200 and all(r["score"] <= 0 for r in response.json()["results"])
    response = client.post("/api/collections/photos/search", files={"image": ("q.jpg", jpeg_bytes(photo(1)))},
                           data={"nprobe": "8"})  # a Flat collection has no nprobe
    assert response.status_code == 400


def test_writes_need_the_key(client):
    upload = {"image": ("new.jpg", jpeg_bytes(photo(50, (160, 120))))}
    assert client.post("/api/collections/photos/images", files=upload).status_code == 401
    assert client.post("/api/collections/photos/images", files=upload,
                       headers={"X-API-Key": API_KEY + "x"}).status_code == 401
    assert client.delete("/api/collections/photos/images/1").status_code == 401
    assert client.post("/api/collections/photos/reindex", json={"index": "HNSW32"}).status_code == 401
    assert client.get("/api/collections/photos").json()["images"] == 14


def test_add_search_remove_reindex(client, collection_dir):
    headers = {"X-API-Key": API_KEY}
    new = jpeg_bytes(photo(50, (160, 120)))
    added = client.post("/api/collections/photos/images", files={"image": ("new.jpg", new)}, headers=headers)
    assert added.status_code == 201, added.text
    ident = added.json()["id"]
    assert added.json()["added"] is True
    again = client.post("/api/collections/photos/images", files={"image": ("again.jpg", new)}, headers=headers)
    assert again.json() == {"id": ident, "added": False}
    assert client.get("/api/collections/photos").json()["images"] == 15
    top = client.post("/api/collections/photos/search", files={"image": ("q.jpg", new)}, data={"k": "1"}).json()
    assert top["results"][0]["id"] == ident
    stored = collection_dir / "uploads"
    assert len(list(stored.iterdir())) == 1

    assert client.post("/api/collections/photos/reindex", json={"index": "HNSW32"}, headers=headers).json()[
        "index"] == "HNSW32"
    top = client.post("/api/collections/photos/search", files={"image": ("q.jpg", new)},
                      data={"k": "1", "ef_search": "32"}).json()
    assert top["results"][0]["id"] == ident

    assert client.delete(f"/api/collections/photos/images/{ident}", headers=headers).status_code == 200
    assert client.get("/api/collections/photos").json()["images"] == 14
    assert list(stored.iterdir()) == []  # the uploaded file went with it
    assert client.delete(f"/api/collections/photos/images/{ident}", headers=headers).status_code == 404


def test_a_write_while_another_process_writes_is_409(client, collection_dir):
    from lookalike.index import Collection

    with Collection.open(collection_dir, writable=True):
        response = client.post("/api/collections/photos/images", files={"image": ("n.jpg", jpeg_bytes(photo(60)))},
                               headers={"X-API-Key": API_KEY})
    assert response.status_code == 409 and "another process" in response.json()["error"]


def test_writes_are_refused_without_a_configured_key(collection_dir):
    from fastapi.testclient import TestClient

    from lookalike.service import ServiceConfig, create_app

    with TestClient(create_app(ServiceConfig(collections=(collection_dir,)))) as client:
        response = client.delete("/api/collections/photos/images/1", headers={"X-API-Key": ""})
        assert response.status_code == 403 and "--api-key" in response.json()["error"]


def test_duplicates_groups_the_copies_best_first(client):
    response = client.get("/api/collections/photos/duplicates", params={"threshold": 0.9})
    assert response.status_code == 200, response.text
    groups = response.json()["groups"]
    assert [[m["name"] for m in g] for g in groups] == [["img00.jpg", "img00_crop.jpg", "img00_small.jpg"]]
    assert (groups[0][0]["width"], groups[0][0]["height"]) == (160, 120)  # the largest first


def test_pages_render_and_escape(client, collection_dir):
    home = client.get("/")
    assert home.status_code == 200 and "photos" in home.text
    page = client.get("/c/photos")
    assert page.status_code == 200 and 'type="file"' in page.text
    results = client.post("/c/photos/search", files={"image": ("<b>evil</b>.jpg", jpeg_bytes(photo(0)))})
    assert results.status_code == 200
    assert "&lt;b&gt;evil&lt;/b&gt;.jpg" in results.text and "<b>evil</b>" not in results.text
    assert results.text.count('class="card"') == 14
    assert client.get("/c/photos/similar/1").status_code == 200
    assert "give --threshold" in client.get("/c/photos/duplicates").text  # presets are for the default descriptor
    assert client.get("/api/collections/photos/duplicates").status_code == 400
    assert "img00_crop.jpg" in client.get("/c/photos/duplicates", params={"threshold": 0.9}).text
    assert "color-hist" in client.get("/c/photos/info").text
    assert "script-src" not in results.headers["content-security-policy"]  # default-src 'self' covers it
    assert "<script>" not in results.text  # no inline script: the CSP forbids it


def test_text_search_in_a_collection_with_a_joint_space(collection_dir):
    """A CCA joint space attached to the served collection: the API gives the library's own results."""
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    from fastapi.testclient import TestClient

    from lookalike.crossmodal.joint import JointEmbedding
    from lookalike.crossmodal.text import create_text_encoder
    from lookalike.index import Collection
    from lookalike.pipelines import crossmodal
    from lookalike.service import ServiceConfig, create_app

    words = ["red", "green", "blue", "dog", "cat", "car", "beach", "snow", "night", "city", "tree", "boat"]
    with Collection.open(collection_dir, writable=True) as store:
        ids, vectors = store.metadata.vectors()
        captions = [f"a {words[i % 12]} {words[(i * 5 + 3) % 12]}" for i in range(len(ids)) for _ in range(2)]
        tfidf = create_text_encoder("tfidf", min_df=1).fit(captions)
        model = JointEmbedding(method="cca", dim=4, image_spec=store.descriptor.spec(), text_spec=tfidf.spec())
        model.fit(vectors, tfidf.encode(captions), np.repeat(np.arange(len(ids)), 2))
        crossmodal.attach_joint(store, model.save(collection_dir.parent / "joint.pt"))
        expected = [h.id for h in crossmodal.search_joint(store, text="a red dog", k=5)]
    app = create_app(ServiceConfig(collections=(collection_dir,), api_key=API_KEY, threads=2))
    with TestClient(app, raise_server_exceptions=False) as client:
        for _ in range(2):  # the second request uses the model loaded by the first
            response = client.post("/api/collections/photos/search", data={"text": "a red dog", "k": "5"})
            assert response.status_code == 200, response.text
            assert [r["id"] for r in response.json()["results"]] == expected
