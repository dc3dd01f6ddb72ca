"""Real `manage.py qcluster` and `manage.py rundispatcher` subprocesses against the test database.

Each process gets DATABASE_URL pointing at the database pytest-django created (a file on SQLite,
see tests/conftest.py), a short lease, and its own process group so teardown can kill it whole.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.db import connection

LEASE_SECONDS = 3
BASE_DIR = Path(settings.BASE_DIR)


def database_url() -> str:
    """The URL of the test database this process is connected to."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"


def wait_for(predicate, *, timeout, interval=0.05, message="condition"):
    """Poll `predicate` until it returns something truthy; fail the test after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


class Processes:
    """Starts and finally kills the subprocesses of one test."""

    def __init__(self, log_dir: Path, *, redis_url: str = "", workers: int = 2):
        self.log_dir = log_dir
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "RUNNER_LEASE_SECONDS": str(LEASE_SECONDS),
            "RUNNER_DISPATCH_POLL_SECONDS": "0.2",
            "Q_WORKERS": str(workers),
            "PYTHONUNBUFFERED": "1",
            "DATABASE_CONN_MAX_AGE": "60",
        }
        self.env.pop("REDIS_URL", None)
        if redis_url:
            self.env["REDIS_URL"] = redis_url
        self.procs: list[tuple[subprocess.Popen, Path]] = []

    def _start(self, name, *args) -> subprocess.Popen:
        log_path = self.log_dir / f"{name}.log"
        log = open(log_path, "wb")  # noqa: SIM115 (closed when the process is killed)
        proc = subprocess.Popen(
            [sys.executable, "manage.py", *args],
            cwd=BASE_DIR,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        proc.log_file = log
        proc.log_path = log_path
        self.procs.append((proc, log_path))
        return proc

    def start_cluster(self, name="cluster", *, wait=True) -> subprocess.Popen:
        proc = self._start(name, "qcluster")
        proc.ready_marker = "running."
        if wait:
            self.wait_ready()
        return proc

    def start_dispatcher(self, name="dispatcher", *, wait=True) -> subprocess.Popen:
        proc = self._start(name, "rundispatcher")
        proc.ready_marker = "dispatcher running"
        if wait:
            self.wait_ready()
        return proc

    def start_all(self, clusters=1, dispatchers=1):
        """Start clusters and dispatchers side by side, then wait until every one is up."""
        for i in range(clusters):
            self.start_cluster(f"cluster-{i}", wait=False)
        for i in range(dispatchers):
            self.start_dispatcher(f"dispatcher-{i}", wait=False)
        self.wait_ready()

    def wait_ready(self):
        for proc, _ in self.procs:
            wait_for(
                lambda proc=proc: self._ready(proc, proc.ready_marker),
                timeout=60,
                message=f"{proc.log_path.stem} to start",
            )

    def _ready(self, proc, marker):
        if proc.poll() is not None:
            raise AssertionError(f"{proc.args} exited early:\n{self.output(proc)}")
        return marker in self.output(proc)

    @staticmethod
    def output(proc) -> str:
        return proc.log_path.read_text(errors="replace")

    def all_output(self) -> str:
        return "\n".join(f"--- {p.args[2]} ---\n{self.output(p)}" for p, _ in self.procs)

    def stop_all(self):
        for proc, _ in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        for proc, _ in self.procs:
            proc.wait(timeout=10)
            proc.log_file.close()
        self.procs.clear()
