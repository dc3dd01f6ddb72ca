"""Operations with real processes: health when the database is gone, log lines as configured."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_database_unreachable_gives_503_without_details():
    """A real process whose database does not answer (a closed port on 127.0.0.1)."""
    port = _free_port()
    code = (
        "from django.test import Client; r = Client().get('/healthz'); "
        "print(r.status_code); print(r.content.decode())"
    )
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://nobody:pw-not-to-leak@127.0.0.1:{port}/nodb",
        "DJANGO_ALLOWED_HOSTS": "testserver",
        "LOG_LEVEL": "CRITICAL",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "--verbosity", "0", "-c", code],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    status, body = result.stdout.strip().split("\n", 1)
    assert status == "503", result.stderr
    report = json.loads(body)
    assert report["checks"]["database"] == {"ok": False, "reason": "database unreachable"}
    assert "pw-not-to-leak" not in body and str(port) not in body


@pytest.mark.slow
@pytest.mark.parametrize("log_format", ["json", "plain"])
def test_configured_log_format_writes_one_line_per_event_with_context(log_format):
    """The real settings, in a fresh process: LOG_FORMAT selects the formatter of every line."""
    code = (
        "import logging; from runner import logs\n"
        "with logs.bind(agent='a1', run_id=42, request_id='r-9'):\n"
        "    logging.getLogger('runner.test').warning('multi\\nline event')"
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "--verbosity", "0", "-c", code],
        cwd=BASE_DIR,
        env={**os.environ, "LOG_FORMAT": log_format},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if "runner.test" in line]
    assert len(lines) == 1
    if log_format == "json":
        entry = json.loads(lines[0])
        assert entry["message"] == "multi\nline event"
        assert (entry["agent"], entry["run_id"], entry["request_id"]) == ("a1", 42, "r-9")
        assert entry["level"] == "WARNING"
    else:
        assert "[agent=a1 run=42 request=r-9] multi\\nline event" in lines[0]
    assert not any(line.startswith("line event") for line in result.stderr.splitlines())
