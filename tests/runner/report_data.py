"""A small, fixed history whose report numbers are worked out by hand in `EXPECTED`.

Window: Monday 2026-01-05 00:00 UTC to Thursday 2026-01-08 00:00 UTC, by day. Agent `alpha` has
nine runs inside it (and two just outside); agent `beta` has one failure inside it.
"""

from datetime import UTC, datetime, timedelta

from tests.factories import AgentFactory, AuditEventFactory, CycleRunFactory

T = datetime(2026, 1, 5, tzinfo=UTC)
SINCE, UNTIL = T, T + timedelta(days=3)
H, S = timedelta(hours=1), timedelta(seconds=1)


def _run(agent, queued, status, trigger="schedule", *, slot=False, start_after=None, ms=None, **kw):
    started = None if start_after is None else queued + start_after
    return CycleRunFactory(
        agent=agent,
        queued_at=queued,
        status=status,
        trigger=trigger,
        slot=queued if slot else None,
        started_at=started,
        finished_at=None if started is None else started + timedelta(milliseconds=ms or 0),
        duration_ms=ms,
        **kw,
    )


def make_history():
    alpha = AgentFactory(slug="alpha")
    beta = AgentFactory(slug="beta")
    _run(alpha, T + 1 * H, "succeeded", slot=True, start_after=2 * S, ms=1000)
    _run(
        alpha,
        T + 2 * H,
        "failed",
        slot=True,
        start_after=4 * S,
        ms=3000,
        error_type="ValueError",
        error_message="bad 1",
    )
    _run(
        alpha,
        T + 3 * H,
        "failed",
        slot=True,
        start_after=6 * S,
        ms=5000,
        error_type="ValueError",
        error_message="bad 2",
    )
    _run(alpha, T + 4 * H, "succeeded", "manual", start_after=0 * S, ms=2000)
    _run(
        alpha,
        T + 25 * H,
        "timed_out",
        slot=True,
        start_after=10 * S,
        ms=9000,
        error_type="Timeout",
        error_message="late",
    )
    _run(alpha, T + 26 * H, "succeeded", "cli", start_after=1 * S, ms=4000)
    _run(alpha, T + 49 * H, "skipped", slot=True)
    _run(alpha, T + 50 * H, "cancelled", "manual", start_after=0 * S, ms=500)
    _run(alpha, T + 51 * H, "queued", "manual")
    # Outside the window: just before since, and exactly at until (the end is exclusive).
    _run(alpha, T - H, "failed", start_after=0 * S, ms=100, error_type="Old", error_message="old")
    _run(alpha, UNTIL, "failed", start_after=0 * S, ms=100, error_type="Later", error_message="x")
    _run(
        beta,
        T + 5 * H,
        "failed",
        "manual",
        start_after=0 * S,
        ms=700,
        error_type="KeyError",
        error_message="'price'",
    )

    AuditEventFactory(
        agent=alpha, actor_username="alice", source="api", action="start", created_at=T + H
    )
    AuditEventFactory(
        agent=alpha,
        actor_username="alice",
        source="api",
        action="stop",
        outcome="refused",
        created_at=T + 2 * H,
    )
    AuditEventFactory(
        agent=alpha, actor_username="bob", source="admin", action="pause", created_at=T + 3 * H
    )
    AuditEventFactory(
        agent=alpha, actor_username="", source="system", action="trip", created_at=T + 4 * H
    )
    AuditEventFactory(
        agent=alpha, actor_username="alice", source="api", action="start", created_at=T - H
    )
    AuditEventFactory(
        agent=beta, actor_username="carol", source="cli", action="run_once", created_at=T + 5 * H
    )
    return alpha, beta


# Hand-computed for `alpha` over [SINCE, UNTIL).
# Durations 500,1000,2000,3000,4000,5000,9000: median = 3000; p95 at 0.95*6 = 5.7 -> 5000 + 0.7*4000.
# Start delays 2000,4000,6000,10000: median at 1.5 -> 5000; p95 at 2.85 -> 6000 + 0.85*4000.
# Failures start at 2h+4s, 3h+6s and 25h+10s: MTBF = (25h+10s - (2h+4s)) / 2 = 41403 s.
# Recoveries: 2h+4s -> 4h (7196 s) and 25h+10s -> 26h+1s (3591 s): MTTR = 5393.5 s.
EXPECTED_ALPHA = {
    "agent": "alpha",
    "window": {"since": "2026-01-05T00:00:00Z", "until": "2026-01-08T00:00:00Z", "bucket": "day"},
    "runs": {
        "total": 9,
        "by_status": {
            "queued": 1,
            "running": 0,
            "succeeded": 3,
            "failed": 2,
            "timed_out": 1,
            "cancelled": 1,
            "abandoned": 0,
            "skipped": 1,
        },
        "by_trigger": {"schedule": 5, "manual": 3, "cli": 1, "backfill": 0},
        "finished": 7,
        "failures": 3,
        "success_rate": 0.4286,
    },
    "duration_ms": {"count": 7, "median": 3000.0, "p95": 7800.0, "max": 9000.0},
    "start_delay_ms": {"count": 4, "median": 5000.0, "p95": 9400.0},
    "percentiles": {"method": "exact", "max_relative_error": 0.0},
    "buckets": [
        {"start": "2026-01-05T00:00:00Z", "runs": 4, "failures": 2},
        {"start": "2026-01-06T00:00:00Z", "runs": 2, "failures": 1},
        {"start": "2026-01-07T00:00:00Z", "runs": 3, "failures": 0},
    ],
    "failures_by_type": [
        {
            "error_type": "ValueError",
            "status": "failed",
            "count": 2,
            "latest_at": "2026-01-05T03:00:00Z",
            "latest_message": "bad 2",
        },
        {
            "error_type": "Timeout",
            "status": "timed_out",
            "count": 1,
            "latest_at": "2026-01-06T01:00:00Z",
            "latest_message": "late",
        },
    ],
    "reliability": {
        "longest_failure_streak": 2,
        "mtbf_seconds": 41403.0,
        "mttr_seconds": 5393.5,
        "recoveries": 2,
    },
    "control_actions": {
        "total": 4,
        "by_actor_source": [
            {"actor": "alice", "source": "api", "count": 2, "applied": 1, "refused": 1},
            {"actor": "", "source": "system", "count": 1, "applied": 1, "refused": 0},
            {"actor": "bob", "source": "admin", "count": 1, "applied": 1, "refused": 0},
        ],
        "by_action": {"pause": 1, "start": 1, "stop": 1, "trip": 1},
    },
    "outputs": {},
}
