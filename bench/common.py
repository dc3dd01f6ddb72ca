"""Helpers shared by the benchmarks: ports, databases, managed subprocesses, percentiles."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

BASE_DIR = Path(__file__).resolve().parent.parent
PORT_RANGE = range(18800, 18900)


def free_port(candidates=PORT_RANGE):
    """A free TCP port on 127.0.0.1 from the given range (first that binds)."""
    for port in candidates:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {candidates}")


def ensure_database(url):
    """Create the PostgreSQL database named in `url` if it does not exist."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(url):
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def django_env(database_url, **extra):
    """Environment for every process of a benchmark: production-like, the bench's database."""
    from tests.agent_kinds import TEST_AGENT_KINDS

    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_FORMAT": "json",
        # the small test agent kinds (a slow, cooperative one for fault runs)
        "RUNNER_EXTRA_AGENT_KINDS": json.dumps(TEST_AGENT_KINDS),
        **{k: str(v) for k, v in extra.items()},
    }


def manage(env, *args, check=True, capture=True):
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=env,
        check=check,
        capture_output=capture,
        text=True,
        timeout=600,
    )


def django_shell(env, code):
    """Run Python in a Django shell of the bench's environment; returns its stdout."""
    return manage(env, "shell", "--verbosity", "0", "-c", code).stdout


class Process:
    """A subprocess in its own session, stopped (TERM, then KILL) when the benchmark ends."""

    def __init__(self, args, env, log_path):
        self.log = open(log_path, "w")  # noqa: SIM115 (closed in stop)
        self.popen = subprocess.Popen(
            args,
            cwd=BASE_DIR,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self):
        return self.popen.pid

    def stop(self, timeout=30):
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)
        self.log.close()


def gunicorn(port, env, log_path, *, workers, threads):
    """`gunicorn config.wsgi` on 127.0.0.1:port (gthread workers, keep-alive 30 s) as a Process."""
    command = [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}"]
    command += ["--workers", str(workers), "--threads", str(threads)]
    command += ["--worker-class", "gthread", "--keep-alive", "30"]
    return Process(command, env, log_path)


def wait_for(predicate, timeout, interval=0.2, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception:
            pass
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout} s waiting for {what}")


def percentile(sorted_values, fraction):
    if not sorted_values:
        return float("nan")
    index = min(int(round(fraction * (len(sorted_values) - 1))), len(sorted_values) - 1)
    return sorted_values[index]


def postgres_admin(url):
    """An autocommit connection to the `postgres` database of the server `url` names."""
    import psycopg

    parts = urlsplit(url)
    return psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True)


def median_seconds(fn, repeats=7):
    """The median wall time of `fn()` over `repeats` calls, after one call to warm up."""
    fn()  # warm the cache and the connection
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)
