"""bench/throughput.py end to end with a handful of tasks: a real qcluster, both rounds, the
report. PostgreSQL only (the bench drops and creates its own database beside the test one)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]


@pytest.mark.postgres
def test_the_throughput_bench_runs_and_reports_a_ratio():
    url = os.environ["DATABASE_URL"].rstrip("/") + "_bench_throughput"
    done = subprocess.run(
        [sys.executable, "bench/throughput.py", "--database-url", url, "--tasks", "5"]
        + ["--rounds", "1"],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    from bench.common import drop_database

    drop_database(url)
    assert done.returncode in (0, 1), done.stderr[-3000:]  # 1: ran, but the target was missed
    assert "runner" in done.stdout and "ratio" in done.stdout, done.stdout + done.stderr[-3000:]
