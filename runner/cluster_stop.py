"""How a qcluster stops: within its grace period, with no cycle left `running`, whoever sent SIGTERM.

Why django-q2's own cluster could hang for minutes under a process manager: systemd (and
`kill -TERM -<pgid>`) sends SIGTERM to every process of the service at once. django-q2's Sentinel
resets SIGTERM to its default action, so it dies on the spot, often while it sleeps in
`stop_event.wait()`. The main process's handler then calls `stop_event.set()`, whose
multiprocessing Condition waits for every sleeper to wake: the dead Sentinel never does, so
`set()` blocks forever (a second SIGTERM re-enters the handler and deadlocks on the Condition's
lock). The workers die on the spot as well, so an in-flight cycle stayed `running` until its lease
ran out and was then recorded as abandoned.

What happens instead (GracefulCluster, GracefulSentinel):
- every handler only sets a flag (runner.shutdown); the main process's own loop stops the
  Sentinel, and the Sentinel, its pusher and its workers keep running until told to stop;
- the Sentinel passes SIGTERM on to its workers and pusher (it may have reached the main process
  alone: `kill <pid>`, systemd's KillMode=mixed); the pusher stops taking tasks, and a running
  cycle ends as `cancelled` at its next checkpoint (or finishes first, if it is that close);
- a worker still busy after RUNNER_SHUTDOWN_GRACE_SECONDS is killed and its run recorded as
  `cancelled` (runner.services.shutdown); then django-q2's stop sequence ends as usual;
- a Sentinel that got SIGTERM on its own, or whose main process is gone, stops itself the same way.
So the cluster exits within the grace period plus a few seconds of django-q2's stop sequence.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time

from django.db import connection
from django_q import cluster as django_q_cluster

from runner import shutdown
from runner.conf import conf
from runner.services.shutdown import runs_cancel_of_killed_worker

logger = logging.getLogger(__name__)

# What the main process allows django-q2's stop sequence beyond the grace period before it
# kills the Sentinel outright (the stop itself takes about a second).
STOP_SEQUENCE_SECONDS = 15
SERVE_POLL_SECONDS = 0.1


def grace_seconds() -> float:
    return max(float(conf.RUNNER_SHUTDOWN_GRACE_SECONDS), 0.0)


def _signal(process, signum):
    if process is not None and process.pid:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signum)


class GracefulSentinel(django_q_cluster.Sentinel):
    """django-q2's Sentinel that outlives SIGTERM and gives its cycles a bounded grace period."""

    def start(self):
        # Sentinel.__init__ has just reset SIGTERM to its default action; note it instead, here
        # and (inherited through fork) in the workers, pusher and monitor spawned next.
        shutdown.install()
        super().start()

    def guard(self):
        threading.Thread(target=self._stop_when_told, name="stop-watch", daemon=True).start()
        super().guard()

    def _stop_when_told(self):
        """A SIGTERM for the Sentinel alone, or its main process gone (killed): stop as if the main
        process had asked. A thread, not the signal handler, sets the Event (see above)."""
        while not self.stop_event.is_set():
            if shutdown.requested() or os.getppid() != self.parent_pid:
                self.stop_event.set()
                return
            time.sleep(SERVE_POLL_SECONDS)

    def stop(self):
        workers = list(self.pool)
        for process in [*workers, self.pusher]:
            _signal(process, signal.SIGTERM)
        done = threading.Event()
        enforcer = threading.Thread(
            target=self._enforce_grace, args=(done,), name="shutdown-grace", daemon=True
        )
        enforcer.start()
        try:
            super().stop()
        finally:
            done.set()
            enforcer.join(timeout=STOP_SEQUENCE_SECONDS)

    def _enforce_grace(self, done):
        """After the grace period, kill the workers still busy and record their runs as cancelled.

        Runs in a thread beside django-q2's stop sequence, which reaps the workers: this thread
        never waits on a process itself (two threads reaping one child would race), it only
        signals the workers the stop sequence has not yet seen exit."""
        grace = grace_seconds()
        if done.wait(grace):
            return
        busy = list(self.pool)
        host = socket.gethostname()
        try:
            for process in busy:
                logger.warning(
                    "worker %s still busy %.0f s after SIGTERM; killing it", process.pid, grace
                )
                _signal(process, signal.SIGKILL)
            for process in busy:
                message = (
                    f"The cluster shut down (SIGTERM) and the cycle did not stop within "
                    f"RUNNER_SHUTDOWN_GRACE_SECONDS ({grace:g} s); its worker was killed"
                )
                runs_cancel_of_killed_worker(worker=f"{host}:{process.pid}", message=message)
        except Exception:  # the database may be gone too: the lease still settles the run later
            logger.exception("recording the runs of killed workers failed")
        finally:
            connection.close()


class GracefulCluster(django_q_cluster.Cluster):
    """django-q2's Cluster whose signal handler only notes the signal (see the module docstring)."""

    sentinel_class = GracefulSentinel

    def __init__(self, *args, **kwargs):
        self.stop_signal = None
        super().__init__(*args, **kwargs)

    def sig_handler(self, signum, frame):
        self.stop_signal = signum

    def start(self) -> int:
        # Cluster.start() spawns the Sentinel class named in its module: name ours while it does.
        original = django_q_cluster.Sentinel
        django_q_cluster.Sentinel = self.sentinel_class
        try:
            return super().start()
        finally:
            django_q_cluster.Sentinel = original

    def serve(self):
        """Run until a signal arrives (or the Sentinel dies), then stop."""
        while self.stop_signal is None and self.sentinel.is_alive():
            time.sleep(SERVE_POLL_SECONDS)
        if self.stop_signal is not None:
            name = signal.Signals(self.stop_signal).name
            logger.info("qcluster got %s; stopping within %g s", name, grace_seconds())
        self.stop()

    def stop(self) -> bool:
        """As django-q2's stop, with a bound: a Sentinel that has not stopped by the end of the
        grace period and the stop sequence is killed rather than waited for."""
        if not self.sentinel.is_alive():
            return False
        logger.info("Q Cluster %s stopping.", self.name)
        # set() waits for the Sentinel to wake; should it die meanwhile, only this thread waits.
        threading.Thread(target=self.stop_event.set, name="stop-event", daemon=True).start()
        self.sentinel.join(timeout=grace_seconds() + STOP_SEQUENCE_SECONDS)
        if self.sentinel.is_alive():
            logger.error("Q Cluster %s did not stop in time; killing its Sentinel", self.name)
            self.sentinel.kill()
            self.sentinel.join(timeout=5)
        logger.info("Q Cluster %s has stopped.", self.name)
        self.start_event = None
        self.stop_event = None
        return True
