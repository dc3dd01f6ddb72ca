"""`manage.py rundispatcher`: queue each agent's scheduled slot the moment it is due.

django-q2's scheduler looks at Schedule rows only about every 30 s, so on its own a cycle starts up
to 30 s late. This loop sleeps until the earliest agent slot (or at most `--poll` seconds, to notice
new schedules) and queues due slots at once. It is a convenience for latency, not a single point
of failure: the Schedule rows stay the durable record that django-q2's scheduler also serves, any
number of dispatchers may run (each slot is taken by one conditional update), and a duplicate
delivery is a no-op. Every few seconds it also resends slots whose task was lost (a crashed
cluster holding it, a broker outage); their claim reaps what the lost worker left.
"""

import signal
import threading
import time

from django.core.management.base import BaseCommand
from django.db import close_old_connections, connection

from runner import scheduling, services
from runner.conf import conf
from runner.services import policies


class Command(BaseCommand):
    help = "Queue scheduled agent cycles within a fraction of a second of their slot."

    def add_arguments(self, parser):
        parser.add_argument(
            "--poll",
            type=float,
            default=conf.RUNNER_DISPATCH_POLL_SECONDS,
            help="Longest sleep between looks at the schedule, in seconds (default %(default)s).",
        )
        parser.add_argument(
            "--once", action="store_true", help="Dispatch what is due now, then exit."
        )

    def handle(self, *args, poll, once, **options):
        stopping = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stopping.set())
        housekeeping_every = max(conf.RUNNER_LEASE_SECONDS / 3, 1.0)
        overdue_grace = max(conf.RUNNER_LEASE_SECONDS, 5)
        resent: set = set()
        last_housekeeping = last_upkeep = 0.0
        self.stdout.write(f"dispatcher running (poll {poll}s)")
        while not stopping.is_set():
            try:
                close_old_connections()
                # Ended pauses and due retries once a poll; due slots at every wake, which with a
                # fleet of agents comes many times a second.
                if time.monotonic() - last_upkeep >= poll:
                    last_upkeep = time.monotonic()
                    services.resume_expired_pauses()  # a pause with an end ends on time
                    for run_id in policies.dispatch_due_retries():  # backoff over
                        self.stdout.write(f"queued retry run {run_id}")
                for agent_id, slot in scheduling.dispatch_due_slots():
                    resent.add((agent_id, slot))
                    self.stdout.write(f"queued agent {agent_id} slot {slot.isoformat()}")
                if time.monotonic() - last_housekeeping >= housekeeping_every:
                    last_housekeeping = time.monotonic()
                    scheduling.redispatch_overdue(grace_seconds=overdue_grace, already_sent=resent)
                    if len(resent) > 10_000:
                        resent.clear()
                wait = scheduling.seconds_to_next_slot()
            except Exception as exc:  # the database went away: reconnect on the next pass
                self.stderr.write(f"dispatcher pass failed: {type(exc).__name__}: {exc}")
                connection.close()
                wait = poll
            if once:
                break
            upkeep_due = max(last_upkeep + poll - time.monotonic(), 0.0)
            stopping.wait(upkeep_due if wait is None else min(wait, upkeep_due))
        self.stdout.write("dispatcher stopped")
