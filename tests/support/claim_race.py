"""One racer of the 16-process claim test: waits for a shared start time, claims, reports.

Run as a subprocess by tests/runner/test_concurrency_postgres.py with DATABASE_URL pointing at the
test database. Prints one JSON line; the claimed run (if any) is left running on purpose.
"""

import json
import os
import sys
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()

from runner import services  # noqa: E402


def main():
    run_id, start_at = int(sys.argv[1]), float(sys.argv[2])
    time.sleep(max(0.0, start_at - time.time()))
    try:
        claim = services.cycle_claim_queued(run_id=run_id, worker=f"racer:{os.getpid()}")
    except services.ClaimRefused as exc:
        print(json.dumps({"run_id": run_id, "claimed": False, "reason": exc.message}))
        return
    print(json.dumps({"run_id": run_id, "claimed": True, "token": claim.token}))


if __name__ == "__main__":
    main()
