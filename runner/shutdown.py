"""Whether this process was asked to shut down: the flag a qcluster's processes set on SIGTERM.

A signal handler here only sets a flag. Anything more (setting a multiprocessing Event, logging,
a database write) can deadlock when the signal lands while the interrupted code holds the same
lock, which is how a `qcluster` given SIGTERM as a process group used to hang (runner.cluster_stop).
The running cycle reads the flag at its next checkpoint and ends as `cancelled`; a worker that
receives a cycle after the flag is set leaves it for another worker (runner.tasks).
"""

from __future__ import annotations

import signal

CANCELLED_MESSAGE = "The worker is shutting down (SIGTERM); the cycle stopped at its checkpoint"
LEFT_FOR_LATER = "This worker is shutting down; the cycle is left for another worker"

_requested = False


def requested() -> bool:
    return _requested


def note_signal(signum, frame):
    """The SIGTERM handler of a cluster's sentinel and of every process it forks."""
    global _requested
    _requested = True


def install():
    """Note SIGTERM (instead of dying at once) in this process and every process it forks."""
    signal.signal(signal.SIGTERM, note_signal)


def reset():
    """Forget a request (tests that run the handler in their own process)."""
    global _requested
    _requested = False
