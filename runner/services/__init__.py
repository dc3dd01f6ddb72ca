"""The only code that changes runner state, writes cycle runs or writes audit events.

Admin actions, API views, management commands and django-q2 tasks each make one call in here.
One module per concern:
  audit          the audit writer and the lock-check-apply-record frame of every request
  control        start, stop, pause, resume, run once, set interval; which controls apply now
  configuration  create, edit and delete agents
  cycles         claim, heartbeat, checkpoint, finish
  leases         the one reaper of expired leases and stale queued runs
  outcomes       settling a run: counters and the circuit breaker
  state          saving an agent's state together with its schedule row
  schedule_rows  that schedule row in one statement; a due cycle's task row in the same transaction
  policies       retries with backoff, what starts when a run ends (run policies that write)
  backfill       queueing the slots of a past range as `backfill` runs
  versions       one numbered configuration version per applied configuration change
  budgets        the budget gate before each cycle (a spent budget pauses the agent)
Callers import from `runner.services` (re-exported below) or from the module itself.
"""

from runner.errors import ClaimRefused, TransitionRefused
from runner.services.audit import control_refused
from runner.services.backfill import agent_backfill
from runner.services.budgets import BudgetExhausted, budget_gate
from runner.services.configuration import (
    agent_create,
    agent_delete,
    agent_restore_version,
    agent_update_config,
)
from runner.services.control import (
    ALLOWED_FROM,
    TRANSITIONS,
    agent_pause,
    agent_resume,
    agent_run_once,
    agent_set_interval,
    agent_start,
    agent_stop,
    allowed_controls,
    cycle_in_flight,
    resume_expired_pauses,
)
from runner.services.cycles import (
    cycle_checkpoint,
    cycle_claim_queued,
    cycle_claim_scheduled,
    cycle_finish,
    cycle_heartbeat,
)
from runner.services.leases import lease_duration, runs_reap_expired
from runner.types import Claim, Outcome

__all__ = [
    "ALLOWED_FROM",
    "BudgetExhausted",
    "TRANSITIONS",
    "Claim",
    "ClaimRefused",
    "Outcome",
    "TransitionRefused",
    "agent_backfill",
    "agent_create",
    "agent_delete",
    "agent_pause",
    "agent_restore_version",
    "agent_resume",
    "agent_run_once",
    "agent_set_interval",
    "agent_start",
    "agent_stop",
    "agent_update_config",
    "allowed_controls",
    "budget_gate",
    "control_refused",
    "cycle_checkpoint",
    "cycle_claim_queued",
    "cycle_claim_scheduled",
    "cycle_finish",
    "cycle_heartbeat",
    "cycle_in_flight",
    "lease_duration",
    "resume_expired_pauses",
    "runs_reap_expired",
]
