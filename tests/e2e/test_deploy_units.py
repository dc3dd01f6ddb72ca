"""The systemd unit files under deploy/: valid for systemd, and each service's own command stops
within the unit's TimeoutStopSec when its whole process group gets the unit's KillSignal.

No systemd runs here, so the test does what systemd would: it starts the unit's ExecStart (paths
moved from /srv/agent-runner to this checkout) in a session of its own and signals the group.
"""

from __future__ import annotations

import configparser
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runner.cluster_stop import STOP_SEQUENCE_SECONDS
from runner.conf import conf
from tests.support.processes import database_url, wait_for

BASE_DIR = Path(__file__).resolve().parents[2]
DEPLOY = BASE_DIR / "deploy"
INSTALL_DIR = "/srv/agent-runner"
SERVICES = {
    "agent-runner-web.service": "Booting worker",
    "agent-runner-cluster.service": "running.",
    "agent-runner-dispatcher.service": "dispatcher running",
}

pytestmark = pytest.mark.slow


def unit(name) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read(DEPLOY / name)
    return parser


def in_this_checkout(text: str) -> str:
    """A unit's text with the install paths pointing at this checkout and its virtualenv."""
    venv_bin = str(Path(sys.executable).parent)
    return text.replace(f"{INSTALL_DIR}/.venv/bin", venv_bin).replace(INSTALL_DIR, str(BASE_DIR))


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="needs systemd-analyze")
def test_the_unit_files_pass_systemd_analyze_verify(tmp_path):
    names = [*SERVICES, "agent-runner.target"]
    for name in names:
        (tmp_path / name).write_text(in_this_checkout((DEPLOY / name).read_text()))
    done = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *(str(tmp_path / name) for name in names)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr


def test_the_cluster_unit_waits_longer_than_the_cluster_may_take():
    timeout = float(unit("agent-runner-cluster.service")["Service"]["TimeoutStopSec"])
    grace = conf.declared["RUNNER_SHUTDOWN_GRACE_SECONDS"].default
    assert timeout >= grace + STOP_SEQUENCE_SECONDS


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("name", sorted(SERVICES))
def test_each_service_stops_within_its_timeout_when_its_group_gets_sigterm(name, tmp_path):
    service = unit(name)["Service"]
    assert service["KillMode"] == "control-group" and service["KillSignal"] == "SIGTERM"
    command = shlex.split(in_this_checkout(service["ExecStart"]))
    log_path = tmp_path / "service.log"
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "GUNICORN_BIND": "127.0.0.1:0",
        "GUNICORN_WORKERS": "1",
        "Q_WORKERS": "1",
        "PYTHONUNBUFFERED": "1",
    }
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command,
            cwd=in_this_checkout(service["WorkingDirectory"]),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(
            lambda: (
                SERVICES[name] in log_path.read_text(errors="replace") or process.poll() is not None
            ),
            timeout=60,
            message=f"{name} to start",
        )
        assert process.poll() is None, log_path.read_text(errors="replace")
        started = time.monotonic()
        os.killpg(process.pid, signal.SIGTERM)
        code = process.wait(timeout=float(service["TimeoutStopSec"]))
        took = time.monotonic() - started
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    assert code == 0, log_path.read_text(errors="replace")
    assert took < float(service["TimeoutStopSec"])
