"""A bounded load test on loopback: 8 concurrent clients for 10 s, zero errors allowed."""

from __future__ import annotations

import io

from lookalike.service.loadtest import run_load
from tests.conftest import photo


def test_eight_clients_for_ten_seconds_without_an_error(live_server):
    import httpx

    ids = [r["id"] for r in httpx.post(live_server + "/api/collections/photos/search",
                                       files={"image": ("q.jpg", _jpeg(0))}, data={"k": "14"}).json()["results"]]
    assert len(ids) == 14
    uploads = [_jpeg(seed) for seed in range(4)]
    requests = [
        *(lambda http, i=i: http.get(f"/api/collections/photos/images/{i}/similar", params={"k": 10}) for i in ids[:4]),
        *(lambda http, u=u: http.post("/api/collections/photos/search", files={"image": ("q.jpg", u)},
                                      data={"k": "10"}) for u in uploads),
        lambda http: http.get(f"/api/collections/photos/images/{ids[0]}/file", params={"size": 64}),
    ]
    report = run_load(live_server, requests, clients=8, seconds=10.0)
    print(f"\n{report.requests} requests in {report.seconds:.1f} s: {report.throughput:.1f}/s, "
          f"p50 {report.percentile(50):.0f} ms, p99 {report.percentile(99):.0f} ms")
    assert report.errors == []
    assert report.requests >= 8


def _jpeg(seed: int) -> bytes:
    buffer = io.BytesIO()
    photo(seed, (160, 120)).save(buffer, "JPEG", quality=85)
    return buffer.getvalue()
