"""Runner data, one module per table group (imported here, so `runner.models.X` keeps working):

  agent             the agent: configuration (schedule_fields: its calendar and policies) and state
  run               one row per cycle
  audit             the append-only audit trail
  health            worker heartbeats and alerts
  guardrails        configuration versions and budget breaches
  rollup            per agent and UTC day: run counts and duration histograms (kept by triggers)

Invariants that must hold against concurrent writers live in the database (check constraints,
partial unique indexes), not in `save()`, because services write with conditional `update()`s.
Only `runner.services` writes these tables.
"""

from runner.choices import (  # noqa: F401 (re-exported: callers import them from here too)
    FAILURE_STATUSES,
    FINISHED_STATUSES,
    INTERVAL_MAX,
    INTERVAL_MIN,
    JITTER_MAX,
    MAX_FAILURES_MAX,
    MAX_FAILURES_MIN,
    RETRY_ATTEMPTS_MAX,
    TIMEOUT_MAX,
    TIMEOUT_MIN,
    AgentState,
    AlertKind,
    AuditAction,
    AuditOutcome,
    AuditSource,
    CatchupPolicy,
    OverlapPolicy,
    RunStatus,
    RunTrigger,
    ScheduleKind,
    TradingMode,
)
from runner.models.agent import Agent
from runner.models.audit import AuditEvent
from runner.models.guardrails import AgentConfigVersion, BudgetBreach
from runner.models.health import Alert, WorkerHeartbeat
from runner.models.rollup import RunRollup, RunRollupBucket
from runner.models.run import CycleRun

__all__ = [
    "Agent",
    "AgentConfigVersion",
    "Alert",
    "AuditEvent",
    "BudgetBreach",
    "CycleRun",
    "RunRollup",
    "RunRollupBucket",
    "WorkerHeartbeat",
]
