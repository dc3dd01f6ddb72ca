"""What the agents list shows beside each agent: its last outcome (or the run in flight) and
recent success rate.

Computed in the agents query itself (one query per page, however many runs there are).
"""

from django.db.models import IntegerField, OuterRef, Subquery
from django.db.models.expressions import RawSQL

from runner.models import FINISHED_STATUSES, Agent, CycleRun, RunStatus

# The changelist's success rate looks at this many of each agent's latest finished runs.
RECENT_RUNS_FOR_RATE = 20


def _recent_runs_count(*, succeeded_only):
    """How many of the agent's latest finished runs (at most RECENT_RUNS_FOR_RATE) [succeeded].

    A correlated subquery over a LIMITed derived table: for each agent the database walks the
    (agent, queued_at) index backwards and stops after the window, however many runs there are.
    The ORM cannot count a sliced correlated subquery, hence RawSQL (portable SQL, PostgreSQL
    and SQLite alike).
    """
    statuses = list(FINISHED_STATUSES)
    placeholders = ", ".join(["%s"] * len(statuses))
    runs, agents = CycleRun._meta.db_table, Agent._meta.db_table
    sql = (
        f"SELECT COUNT(*) FROM (SELECT r.status FROM {runs} r "
        f"WHERE r.agent_id = {agents}.id AND r.status IN ({placeholders}) "
        f"ORDER BY r.queued_at DESC, r.id DESC LIMIT %s) recent"
    )
    params = [*statuses, RECENT_RUNS_FOR_RATE]
    if succeeded_only:
        sql += " WHERE recent.status = %s"
        params.append(RunStatus.SUCCEEDED)
    return RawSQL(sql, params, output_field=IntegerField())


def annotate_recent_outcomes(queryset):
    """Last outcome and success over the latest finished runs, in the agents query itself:
    one query for the whole changelist page however many runs there are."""
    # Agent.last_run is the start of the agent's last cycle, so the last run is found by an
    # equality lookup on the (agent, started_at) index.
    last = CycleRun.objects.filter(agent=OuterRef("pk"), started_at=OuterRef("last_run")).values(
        "status"
    )[:1]
    running = CycleRun.objects.filter(agent=OuterRef("pk"), status=RunStatus.RUNNING)
    return queryset.annotate(
        recent_finished=_recent_runs_count(succeeded_only=False),
        recent_succeeded=_recent_runs_count(succeeded_only=True),
        last_outcome=Subquery(last),
        running_since=Subquery(running.values("started_at")[:1]),
    )
