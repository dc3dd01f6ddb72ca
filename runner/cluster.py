"""A django-q2 cluster that takes a task from the broker only when one of its workers is free.

Why: django-q2's pusher takes a task from the broker as soon as its cluster's task queue has
room (`queue_limit`), then blocks until a worker takes it. So a cluster whose workers are all
busy still takes and holds up to `queue_limit + 1` tasks, and with several clusters a due cycle
waited behind a busy one (for the rest of a cycle, or until the dispatcher resent it) while
another cluster had an idle worker. With this gate a busy cluster leaves tasks in the broker,
where any cluster with a free worker takes them within one poll.

How: the Sentinel keeps one shared counter, `free`: its workers waiting in `task_queue.get()`
minus the tasks handed over and not yet taken. A worker adds one each time it calls `get()`
(its end of the task queue is wrapped; django-q2's worker loop is unchanged). The pusher asks
the broker for a task only while `free > 0`, and takes one off after each hand-over. Only the
pusher decrements, so `free` cannot drop between its look and its hand-over. The gate sits in
front of `dequeue()`, so it works the same for the ORM broker and Redis, and for every task
(cycles and django-q2's own schedules alike).

Why this way: the workers' `timer` values are set busy only after `pre_execute`, so a worker
that has just taken a task still looks idle and the pusher would hand a second task to nobody.
A `broker_class` alone cannot see the workers: the count must be shared memory made by the
Sentinel before it forks them, hence our Sentinel, started by our `qcluster` command. A
dispatcher resending unclaimed slots would only add copies for busy clusters to take.

Robustness: the gate only delays `dequeue()`; every task taken is handed over as before, so
none is dropped. `free` never counts fewer waiting workers than there are (it rises before a
worker waits and falls only after a hand-over), so a cluster with a free worker always takes
work. It counts one too many if a worker is killed while it waits, or leaves (recycled, killed)
after an early release, or the pusher is killed between a hand-over and its decrement. That
cluster may then take one task ahead, as django-q2 always did, until a hand-over finds more free
workers than the pool has and drops the extra count.
With the ORM broker's `bulk` above 1 the rest of a batch is held as before (we keep 1).

Early release: a cycle that has run its agent and only has its result left to record calls
`release_worker_early()`, which counts its worker as free a few milliseconds before it calls
`get()`, so the pusher's broker round trip overlaps that recording instead of following it (the
hand-over was a quarter of a busy worker's time). The worker's next `get()` then does not count
it again. The task taken for it waits in this cluster's queue only while the result is written.

Stopping (SIGTERM, within a grace period, no cycle left `running`) is runner.cluster_stop's; the
gate only stops taking tasks as soon as the pusher has been asked to stop.
"""

from __future__ import annotations

import time
from multiprocessing import Condition, Value

from django_q.conf import Conf
from django_q.pusher import pusher
from django_q.worker import worker

from runner import shutdown
from runner.cluster_stop import GracefulCluster, GracefulSentinel

# How often a stopping pusher looks at its stop event (the broker's own poll is 0.2 s).
GATE_POLL_SECONDS = 0.02


class _Wrapper:
    """Holds the wrapped queue or broker and the shared count; the rest goes to the wrapped one.

    `free` is a shared integer and `changed` a Condition on its lock, so the pusher sleeps until
    a worker comes free instead of looking again every few milliseconds."""

    def __init__(self, inner, free, changed):
        self._inner = inner
        self._free = free
        self._changed = changed

    def __getattr__(self, name):
        if name.startswith("_"):  # not set yet (unpickling): no recursion into _inner
            raise AttributeError(name)
        return getattr(self._inner, name)


# This worker process's end of the task queue (set at its first get()), for release_worker_early.
_this_worker = None


class _WorkerEnd(_Wrapper):
    """A worker's end of the task queue: counts the worker as free while it waits in get()."""

    _released = False  # counted as free early by release_worker_early(), not yet in get()

    def get(self, *args, **kwargs):
        global _this_worker
        _this_worker = self
        if self._released:
            self._released = False  # already counted
        else:
            self._count_free()
        return self._inner.get(*args, **kwargs)

    def release_early(self):
        if not self._released:
            self._released = True
            self._count_free()

    def _count_free(self):
        with self._changed:
            self._free.value += 1
            self._changed.notify_all()


def release_worker_early():
    """Count this worker as free now: its task has only its result left to record. A no-op
    outside a gated cluster's worker (tests, `runagent --once`, the web process)."""
    if _this_worker is not None:
        _this_worker.release_early()


class _PusherEnd(_Wrapper):
    """The pusher's end of the task queue: each hand-over uses up one free worker."""

    def __init__(self, inner, free, changed, workers):
        super().__init__(inner, free, changed)
        self._workers = workers

    def put(self, *args, **kwargs):
        self._inner.put(*args, **kwargs)
        with self._free.get_lock():
            # No more workers wait than the pool has: drop a count a killed worker left behind.
            self._free.value = min(self._free.value, self._workers) - 1


class _GatedBroker(_Wrapper):
    """The pusher's broker: `dequeue()` asks the real broker only while a worker is free.

    With no free worker it waits for one (woken by the worker's get()) at most the broker's poll
    interval, then returns nothing, so the pusher loop checks its stop event as it does after an
    empty dequeue.
    """

    def dequeue(self):
        if shutdown.requested():  # SIGTERM: take nothing more, let the Sentinel stop us
            time.sleep(GATE_POLL_SECONDS)
            return None
        with self._changed:
            if not self._changed.wait_for(lambda: self._free.value > 0, timeout=Conf.POLL):
                return None
        return self._inner.dequeue()


class GatedSentinel(GracefulSentinel):
    """django-q2's Sentinel with the free-worker gate between its pusher and its workers."""

    def __init__(self, *args, **kwargs):
        # Made before the Sentinel forks its workers and pusher, which all share it.
        self.free = Value("i", 0)
        self.free_changed = Condition(self.free.get_lock())
        super().__init__(*args, **kwargs)

    def spawn_pusher(self):
        return self.spawn_process(
            pusher,
            _PusherEnd(self.task_queue, self.free, self.free_changed, self.pool_size),
            self.event_out,
            _GatedBroker(self.broker, self.free, self.free_changed),
        )

    def spawn_worker(self):
        self.spawn_process(
            worker,
            _WorkerEnd(self.task_queue, self.free, self.free_changed),
            self.result_queue,
            Value("f", -1),
            self.timeout,
        )


class GatedCluster(GracefulCluster):
    """Our stopping cluster, starting a GatedSentinel."""

    sentinel_class = GatedSentinel
