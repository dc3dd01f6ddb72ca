"""Queue many django-q2 tasks with one broker write: the dispatcher's batch of due slots.

django-q2's `async_task` builds, signals and signs a task, then pushes it with one INSERT on the
ORM broker. For a pass of many due slots (a fleet of agents, or a burst on one second) those
INSERTs were most of the pass: 200 slots took ~0.4 s, and with the ORM broker no worker sees a
task before the pass commits. Here `async_task` does everything as usual but hands its package to
a collecting broker (its own `broker` option); `flush()` then writes the packages in one
`bulk_create` for the ORM broker, or pushes them one by one to any other broker (Redis is fast).
Tasks run synchronously (`sync`, in tests) never reach a broker, as with `async_task` alone.
"""

from __future__ import annotations

from django.utils import timezone
from django_q.brokers import get_broker
from django_q.brokers.orm import ORM
from django_q.conf import Conf
from django_q.models import OrmQ
from django_q.tasks import async_task


class TaskBatch:
    """`add()` queues like async_task; nothing reaches the broker before `flush()`."""

    def __init__(self):
        self._broker = get_broker()
        self.list_key = self._broker.list_key  # async_task logs it
        self._packages = []

    def enqueue(self, package):  # called by async_task, as on a broker
        self._packages.append(package)

    def add(self, func, *args, **kwargs):
        """async_task(func, *args, **kwargs), collected; returns the task id."""
        return async_task(func, *args, broker=self, **kwargs)

    def flush(self) -> int:
        packages, self._packages = self._packages, []
        if isinstance(self._broker, ORM):
            key, now = self.list_key or Conf.CLUSTER_NAME, timezone.now()
            OrmQ.objects.using(Conf.ORM).bulk_create(
                [OrmQ(key=key, payload=package, lock=now) for package in packages]
            )
        else:
            for package in packages:
                self._broker.enqueue(package)
        return len(packages)
