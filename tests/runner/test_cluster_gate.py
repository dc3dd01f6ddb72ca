"""The free-worker gate's count (runner.cluster), with the real shared-memory primitives.

The gate's behaviour across real clusters is tests/e2e/test_idle_workers.py; here the counting
rules, including a worker released early by a cycle that only has its result left to write.
"""

import queue
import threading
import time
from multiprocessing import Condition, Value

import pytest

from runner import cluster


class FakeBroker:
    """Stands in for django-q2's broker: hands out numbered tasks and counts dequeues."""

    def __init__(self):
        self.dequeued = 0

    def dequeue(self):
        self.dequeued += 1
        return [(self.dequeued, f"task-{self.dequeued}")]


@pytest.fixture
def gate(monkeypatch):
    monkeypatch.setattr(cluster, "_this_worker", None)
    free = Value("i", 0)
    changed = Condition(free.get_lock())
    tasks = queue.Queue()
    worker_end = cluster._WorkerEnd(tasks, free, changed)
    pusher_end = cluster._PusherEnd(tasks, free, changed, 2)
    broker = cluster._GatedBroker(FakeBroker(), free, changed)
    return free, tasks, worker_end, pusher_end, broker


def test_a_waiting_worker_is_counted_once_and_a_hand_over_uses_it(gate):
    free, tasks, worker_end, pusher_end, _ = gate
    pusher_end.put("first")
    assert free.value == -1  # handed over before anyone waited
    assert worker_end.get(timeout=1) == "first"
    assert free.value == 0  # the get() counted the worker, the earlier hand-over used it


def test_early_release_counts_the_worker_before_its_get_and_not_again(gate):
    free, _, worker_end, pusher_end, _ = gate
    pusher_end._inner.put("ignored")  # a task already queued, so get() returns at once
    worker_end.get(timeout=1)
    assert free.value == 1

    free.value = 0  # the worker is now busy with that task
    cluster.release_worker_early()  # this process's worker end was remembered by get()
    assert free.value == 1
    cluster.release_worker_early()  # a second call in the same task changes nothing
    assert free.value == 1

    pusher_end.put("next")  # the pusher hands the next task over meanwhile
    assert free.value == 0
    assert worker_end.get(timeout=1) == "next"
    assert free.value == 0  # the early count stood for this get(): not counted twice

    pusher_end._inner.put("later")
    worker_end.get(timeout=1)  # the task after that one, without an early release
    assert free.value == 1  # counted as usual


def test_release_outside_a_gated_worker_does_nothing(gate):
    free, *_ = gate
    cluster.release_worker_early()  # tests, runagent --once and the web process call it too
    assert free.value == 0


def test_the_gated_broker_takes_nothing_while_no_worker_is_free(gate, monkeypatch):
    free, _, _, _, broker = gate
    monkeypatch.setattr(cluster.Conf, "POLL", 0.05)
    assert broker.dequeue() is None
    assert broker._inner.dequeued == 0


def test_an_early_release_wakes_a_waiting_pusher_at_once(gate, monkeypatch):
    free, tasks, worker_end, _, broker = gate
    monkeypatch.setattr(cluster.Conf, "POLL", 5)
    tasks.put("running")
    worker_end.get(timeout=1)
    free.value = 0  # busy
    taken = []
    pusher = threading.Thread(target=lambda: taken.append((broker.dequeue(), time.monotonic())))
    pusher.start()
    time.sleep(0.1)
    assert not taken  # waiting for a free worker
    released = time.monotonic()
    cluster.release_worker_early()
    pusher.join(timeout=5)
    ((task, at),) = taken
    assert task == [(1, "task-1")]
    assert at - released < 1  # woken by the release, not by the 5 s poll
