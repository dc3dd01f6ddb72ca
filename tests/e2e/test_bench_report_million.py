"""bench/report_million.py runs end to end on a small load, so it does not rot (PostgreSQL only)."""

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_report_bench_runs_on_a_small_load():
    url = os.environ.get("DATABASE_URL", "")
    if urlsplit(url).scheme not in ("postgres", "postgresql", "pgsql"):
        pytest.skip("the report bench needs PostgreSQL")
    name = urlsplit(url).path.lstrip("/") or "agent_runner"
    done = subprocess.run(
        [
            sys.executable,
            "bench/report_million.py",
            "--runs",
            "4000",
            "--database",
            f"{name}_smoke",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "DATABASE_URL": url},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "rebuildrollups:" in done.stdout
    assert "report, all agents, 30 days" in done.stdout
    assert "30-day report under one second: OK" in done.stdout
