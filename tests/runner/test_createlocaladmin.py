"""`make run` prints the admin URL the web process really serves, on WEB_PORT when it is set."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from django.core.management import call_command

ROOT = Path(__file__).resolve().parents[2]
PROCFILE_PORT = re.compile(r"\$\{WEB_PORT:-(\d+)\}")
PRINTED = re.compile(r"Local admin: (http://\S+/admin/)  user '(\S+)'  password '(\S+)'")


def printed_url(capsys):
    call_command("createlocaladmin")
    return PRINTED.search(capsys.readouterr().out).group(1)


@pytest.mark.django_db
def test_the_printed_url_uses_web_port(monkeypatch, capsys):
    monkeypatch.setenv("WEB_PORT", "8123")
    assert printed_url(capsys) == "http://127.0.0.1:8123/admin/"


@pytest.mark.django_db
def test_without_web_port_the_printed_url_uses_the_procfiles_default(monkeypatch, capsys):
    monkeypatch.delenv("WEB_PORT", raising=False)
    default = PROCFILE_PORT.search((ROOT / "Procfile").read_text()).group(1)
    assert printed_url(capsys) == f"http://127.0.0.1:{default}/admin/"


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
