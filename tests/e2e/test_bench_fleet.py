"""bench/fleet.py runs end to end at its --quick size, so it does not rot: real qcluster and
dispatcher subprocesses on a throwaway PostgreSQL database, the runner and the plain django-q2
baseline, and every slot accounted for."""

import json
import os
import subprocess
import sys
import uuid

import pytest
from django.conf import settings

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def test_the_fleet_bench_runs_every_slot_and_prints_its_figures(tmp_path):
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        pytest.skip("the fleet bench needs PostgreSQL")
    name = f"test_bench_fleet_{uuid.uuid4().hex[:8]}"
    out = tmp_path / "fleet.json"
    command = [sys.executable, "bench/fleet.py", "--quick", "--json", str(out)]
    command += ["--database-url", f"{url.rsplit('/', 1)[0]}/{name}"]
    done = subprocess.run(
        command, cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=400
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "ratios runner/plain p95" in done.stdout

    results = json.loads(out.read_text())
    assert set(results) == {"10 agents / minute", "burst: 10 in 1 s"}
    for figures in results.values():
        runner, plain = figures["runner"], figures["plain"]
        assert runner["slots"] >= 10 and runner["lost"] == 0
        assert runner["ran"] + runner["skipped"] == runner["slots"]
        assert 0 <= runner["p50"] <= runner["p95"] <= runner["max"] < 30
        assert runner["cluster_cpu"] > 0 and runner["dispatcher_cpu"] > 0
        assert plain["slots"] >= 10 and plain["lost"] == 0
