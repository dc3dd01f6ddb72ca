"""A real HTTP server for tests and benchmarks: gunicorn serving this project in a subprocess.

It gets its own database, migrated here, so it never shares a connection or a transaction with
the test process: a PostgreSQL database `<name>_http` beside the one DATABASE_URL names (created
and dropped here) when DATABASE_URL is PostgreSQL, else a fresh SQLite file. It binds 127.0.0.1
on a port the OS picks. `setup_code` runs in `manage.py shell`
after the user and its token exist (as `user`), before the server starts; what it prints is
handed back.
"""

import os
import re
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

BASE_DIR = Path(__file__).resolve().parents[2]


class Server(NamedTuple):
    base_url: str
    token: str  # API token of the user made for this server (every runner permission)
    setup_output: list  # lines printed by setup_code
    log_path: Path  # gunicorn's log, including tracebacks of server errors

    def client(self):
        """An httpx client of this server, authenticated by the token (close it, or use `with`)."""
        import httpx

        return httpx.Client(
            base_url=self.base_url, headers={"Authorization": f"Token {self.token}"}, timeout=60
        )


LISTENING = re.compile(r"Listening at: (http://127\.0\.0\.1:\d+)")
ACCESS_LOG = ["--access-logfile", "-", "--access-logformat", "access %(p)s %(m)s %(U)s %(s)s"]
ACCESS_LINE = re.compile(r"^access <(\d+)> (\S+) (\S+) (\d{3})$", re.MULTILINE)

GRANT_TOKEN = """
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from rest_framework.authtoken.models import Token
user, _ = get_user_model().objects.get_or_create(username={username!r})
user.user_permissions.set(Permission.objects.filter(content_type__app_label="runner"))
print(Token.objects.get_or_create(user=user)[0].key)
"""


def _environment(database_url, extra):
    env = {**os.environ, "DATABASE_URL": database_url, "DJANGO_DEBUG": "0"}
    env.pop("REDIS_URL", None)  # no Redis unless the caller names one in `extra`
    env.update(extra)
    env.setdefault("DJANGO_SECRET_KEY", "http-server-test-key-not-for-production-0123456789abcdef")
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    env["PYTHONPATH"] = str(BASE_DIR)
    return env


def _manage(env, *args, input_text=None):
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=env,
        input=input_text,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


@contextmanager
def _server_database(tmp):
    """A database URL of the server's own: a fresh PostgreSQL database or a SQLite file."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        yield f"sqlite:///{tmp}/db.sqlite3"
        return
    import psycopg
    from psycopg import sql

    base, _, name = url.rpartition("/")
    name = name.split("?", 1)[0]
    server_db = f"{name}_http"
    with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(server_db))
        )
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(server_db)))
    try:
        yield f"{base}/{server_db}"
    finally:
        with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(server_db))
            )


@contextmanager
def running_server(
    *, env=None, setup_code="", username="http-user", threads=8, workers=1, access_log=False
):
    """Yields a Server: gunicorn over a fresh migrated database.

    With `access_log`, gunicorn logs one line per request as "<worker pid> <method> <path>
    <status>", so a test can tell which worker answered.
    """
    with (
        tempfile.TemporaryDirectory(prefix="agent-runner-http-") as tmp,
        _server_database(tmp) as database_url,
    ):
        environment = _environment(database_url, env or {})
        _manage(environment, "migrate", "--noinput")
        output = _manage(
            environment,
            "shell",
            "--no-imports",
            input_text=GRANT_TOKEN.format(username=username) + "\n" + setup_code,
        )
        token, *setup_output = output.strip().splitlines()
        log_path = Path(tmp) / "server.log"
        with open(log_path, "w") as log:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "config.wsgi:application",
                    "--bind",
                    "127.0.0.1:0",
                    "--workers",
                    str(workers),
                    "--threads",
                    str(threads),
                    "--worker-class",
                    "gthread",
                    "--log-level",
                    "info",
                    "--graceful-timeout",
                    "2",
                    *(ACCESS_LOG if access_log else []),
                ],  # fmt: skip
                cwd=BASE_DIR,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            base_url = _wait_for_listening(process, log_path)
            yield Server(base_url, token, setup_output, log_path)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_for_listening(process, log_path, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = LISTENING.search(log_path.read_text())
        if found and "Booting worker" in log_path.read_text():
            return found.group(1)
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log_path.read_text()}")
        time.sleep(0.1)
    raise RuntimeError(f"server did not start in {timeout} s:\n{log_path.read_text()}")
