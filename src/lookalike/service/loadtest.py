"""Drive a running ``lookalike serve`` with concurrent clients and measure what it sustains.

Each client is a thread with its own HTTP connection that sends requests back to back for a
fixed time; the report gives throughput and latency percentiles, and counts every answer that
is not a 2xx (or that fails to arrive) as an error.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LoadReport:
    """What a load run measured."""

    requests: int  # answered requests (errors included)
    errors: list[str]  # one line per failed request: status and message
    seconds: float  # wall time of the run
    latencies: np.ndarray  # (requests,) seconds per request

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds

    def percentile(self, q: float) -> float:
        """Latency percentile in milliseconds."""
        return float(np.percentile(self.latencies, q) * 1000) if len(self.latencies) else float("nan")


def run_load(base_url: str, requests: list[Callable], *, clients: int = 8, seconds: float = 30.0) -> LoadReport:
    """``clients`` threads, each cycling through ``requests`` (functions ``httpx.Client -> Response``,
    started at a different one per client) against ``base_url`` for ``seconds``."""
    import httpx

    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def client(number: int) -> None:
        mine, failed = [], []
        with httpx.Client(base_url=base_url, timeout=60.0) as http:
            i = number
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                try:
                    response = requests[i % len(requests)](http)
                    if not response.is_success:
                        failed.append(f"{response.status_code} {response.text[:200]}")
                except httpx.HTTPError as exc:
                    failed.append(f"{type(exc).__name__}: {exc}")
                mine.append(time.perf_counter() - start)
                i += 1
        with lock:
            latencies.extend(mine)
            errors.extend(failed)

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return LoadReport(len(latencies), errors, time.perf_counter() - started, np.array(latencies))
