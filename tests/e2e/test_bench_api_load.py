"""bench/api_load.py still runs: a few requests per scenario, every answer a 2xx."""

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

BASE_DIR = Path(__file__).resolve().parents[2]


def test_the_api_load_bench_runs_every_scenario():
    done = subprocess.run(
        [sys.executable, "bench/api_load.py", "--concurrency", "2", "--requests", "20"],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for scenario in ("/bench/ping", "start|stop", "pause|resume", "/status/"):
        assert scenario in done.stdout
