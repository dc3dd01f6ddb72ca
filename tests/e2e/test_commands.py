"""Management commands as a user runs them: real processes on a fresh migrated database."""

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


pytestmark = pytest.mark.django_db


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_real_process_exit_codes(tmp_path):
    """The command as a user runs it, on a fresh migrated SQLite file."""
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.sqlite3'}"}
    run = lambda *a: subprocess.run(  # noqa: E731
        [sys.executable, "manage.py", *a],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run("migrate", "--noinput").returncode == 0
    unknown = run("runagent", "--once", "--agent", "nobody")
    assert unknown.returncode == 1
    assert "refused: No agent with slug 'nobody'" in unknown.stderr
    create = run(
        "shell",
        "-c",
        "from runner.models import Agent; "
        "Agent.objects.create(slug='ok', name='ok', kind='test-ok')",
    )
    assert create.returncode == 0, create.stderr
    ok = run("runagent", "--once", "--agent", "ok", "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["status"] == "succeeded"


@pytest.mark.slow
def test_runagent_once_json_after_migrate_in_a_fresh_database(tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.sqlite3'}",
        "DJANGO_SECRET_KEY": "test-only-secret-key-for-a-subprocess-0123456789",
        "MARKET_SOURCE": "snapshot",
        "TRADING_MODE": "dry_run",
    }
    manage = [sys.executable, str(ROOT / "manage.py")]
    migrate = subprocess.run(
        [*manage, "migrate", "--noinput", "-v0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert migrate.returncode == 0, migrate.stderr
    result = subprocess.run(
        [*manage, "runagent", "--once", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    run = json.loads(result.stdout)
    assert run["agent"] == "default" and run["status"] == "succeeded" and run["trigger"] == "cli"
    for key in ("id", "started_at", "finished_at", "duration_ms", "summary", "error"):
        assert key in run
    summary = run["summary"]
    assert summary["source"] == "snapshot" and summary["sample_data"] is True
    assert summary["markets_tradeable"] > 0 and summary["markets_analysed"] == 20
    assert summary["decisions_rejected"] == 20 and summary["outcome"] == "no trade"
    assert set(summary["step_ms"]) >= {"research", "filter", "analyse", "risk", "execute"}


PRINTED = re.compile(r"Local admin: (http://\S+/admin/)  user '(\S+)'  password '(\S+)'")


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_make_runs_printed_url_is_where_the_procfile_serves(tmp_path):
    """The steps of `make run` (createlocaladmin, then honcho with the Procfile's web process)
    with WEB_PORT set: the printed URL answers, and the printed login works there."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        DJANGO_DEBUG="1",
        DJANGO_ENV_FILE=str(tmp_path / "none.env"),
        LOCAL_ADMIN_PASSWORD="printed-pass-123",
        WEB_PORT=str(free_port()),
        PYTHONPATH=str(ROOT),
    )
    manage = [sys.executable, "manage.py"]
    run = {"cwd": ROOT, "env": env, "capture_output": True, "text": True, "timeout": 120}
    assert subprocess.run([*manage, "migrate", "--noinput"], **run).returncode == 0
    url, username, password = PRINTED.search(
        subprocess.run([*manage, "createlocaladmin"], **run).stdout
    ).groups()
    assert url == f"http://127.0.0.1:{env['WEB_PORT']}/admin/"

    (tmp_path / "empty.env").write_text("")  # not the checkout's .env, which may name a port
    honcho = [str(Path(sys.executable).with_name("honcho")), "-e", str(tmp_path / "empty.env")]
    server = subprocess.Popen(
        [*honcho, "start", "web"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # honcho and its runserver, stopped together below
    )
    try:
        with httpx.Client(follow_redirects=True, timeout=10) as client:
            login = wait_for(client, url)
            assert login.status_code == 200 and login.url.path == "/admin/login/"
            answer = client.post(
                login.url,
                data={
                    "username": username,
                    "password": password,
                    "csrfmiddlewaretoken": client.cookies["csrftoken"],
                    "next": "/admin/",
                },
            )
            assert answer.status_code == 200 and answer.url.path == "/admin/"
            assert "Site administration" in answer.text
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)


def wait_for(client, url, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return client.get(url)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def _manage(env_overrides, tmp_path, *args):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update({"DJANGO_ENV_FILE": str(tmp_path / "no.env"), "PYTHONPATH": str(ROOT)})
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_migrate_creates_the_shared_cache_table(tmp_path):
    """A fresh database needs no `createcachetable`: after `migrate` every process shares the
    cache (the API throttle counts), through a table in the database."""
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    migrated = _manage(env, tmp_path, "migrate", "--noinput")
    assert migrated.returncode == 0, migrated.stderr
    with sqlite3.connect(tmp_path / "db.sqlite3") as db:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
    assert "runner_cache" in tables
    code = "from django.core.cache import cache; cache.set('k', 41); print(cache.get('k') + 1)"
    # Written by one process, read by another: the value is in the database, not in memory.
    assert _manage(env, tmp_path, "shell", "--no-imports", "-c", code).stdout.strip() == "42"
    code = "from django.core.cache import cache; print(cache.get('k'))"
    assert _manage(env, tmp_path, "shell", "--no-imports", "-c", code).stdout.strip() == "41"
