"""Throttle counts: one window per key, counted atomically where the cache lives."""

import threading
import time

import pytest
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from django.db import connection

from runner.ratelimit import count_request


@pytest.mark.django_db
def test_a_window_counts_its_requests_and_a_new_one_opens_when_it_ends():
    cache = caches["default"]
    counts = [count_request(cache, "throttle_test_1", 1) for _ in range(3)]
    assert [count for count, _ in counts] == [1, 2, 3]
    assert all(0 < left <= 1 for _, left in counts)
    assert count_request(cache, "throttle_test_2", 1)[0] == 1  # keys are counted apart
    time.sleep(1.1)
    count, left = count_request(cache, "throttle_test_1", 60)
    assert count == 1 and 59 < left <= 60


@pytest.mark.django_db
def test_the_cache_api_never_reads_a_count_row():
    cache = caches["default"]
    count_request(cache, "throttle_test_3", 60)
    assert cache.get("throttle_test_3") is None  # another key version, another format


def test_the_local_memory_cache_counts_too():
    cache = LocMemCache("ratelimit-test", {})
    assert [count_request(cache, "k", 60)[0] for _ in range(3)] == [1, 2, 3]


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_each_get_their_own_count():
    """Sixteen threads, each on its own connection, count at once: 1..16, no count twice."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serializes writers; the race this guards against is PostgreSQL's")
    cache = caches["default"]
    counts, barrier = [], threading.Barrier(16)
    lock = threading.Lock()

    def one():
        from django.db import connections

        try:
            barrier.wait()
            count, _ = count_request(cache, "throttle_test_burst", 60)
            with lock:
                counts.append(count)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=one) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(counts) == list(range(1, 17))
