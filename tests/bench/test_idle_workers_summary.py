"""bench/idle_workers.py's summary: what counts as late and as a skipped slot."""

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from bench import idle_workers

SLOT = datetime(2026, 12, 2, 11, 0, tzinfo=UTC)


def run(status, delay=None, message=""):
    started = SLOT + timedelta(seconds=delay) if delay is not None else None
    return SimpleNamespace(slot=SLOT, started_at=started, status=status, error_message=message)


def test_a_slot_skipped_by_the_drills_own_stop_is_not_counted_as_waiting(capsys):
    runs = [
        run("succeeded", 0.1),
        run("succeeded", 3.0),
        run("skipped", message="Scheduled cycle skipped: overlap policy skip, run 7 still running"),
        run("skipped", message="Scheduled cycle skipped: agent is stopped"),
    ]
    stats = idle_workers.summarize("drill", runs)
    assert stats["n"] == 2
    assert stats["late"] == 1
    assert stats["skipped"] == 1
    assert "1 slots skipped" in capsys.readouterr().out
