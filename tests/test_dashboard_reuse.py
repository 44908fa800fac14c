"""The dashboard's reused entries (overview_cache.reuse): one build per key at a time, on both databases."""

from __future__ import annotations

import threading
import time

from cctv_monitor.db import get_db
from dashboards import overview_cache


def test_requests_arriving_during_a_build_wait_for_it(app):
    """Eight requests for the same missing entry: one builds (slowly), the seven others get its value."""
    overview_cache.clear()
    builds: list[int] = []
    answers: list[object] = []
    start = threading.Barrier(8)

    def build() -> dict:
        builds.append(1)
        time.sleep(0.3)  # a slow build: the others arrive meanwhile
        return {"built": len(builds)}

    def request() -> None:
        with get_db(app).session_scope() as session:
            start.wait()
            answers.append(overview_cache.reuse(session, ("test-single-build",), build))

    threads = [threading.Thread(target=request) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(builds) == 1 and answers == [{"built": 1}] * 8
    with get_db(app).session_scope() as session:  # and the next request is served from the entry
        assert overview_cache.reuse(session, ("test-single-build",), build) == {"built": 1} and len(builds) == 1
