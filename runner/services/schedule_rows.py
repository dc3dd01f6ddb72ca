"""An agent's django-q2 `Schedule` row written in one statement, and its due cycle queued in the
transaction of the request that made it due.

`scheduling.sync_schedule` reads the row and then saves it (`update_or_create`: a SELECT, two
savepoints, an INSERT or UPDATE). A control request already holds the agent's row lock, and every
writer of an agent's Schedule row holds that lock too, so nothing can slip in between: the row is
upserted as one statement (on PostgreSQL an `UPDATE … RETURNING` in a CTE and an `INSERT` of the
same values where nothing was updated; elsewhere the UPDATE, then the INSERT when it touched no
row). The values are those of `sync_schedule` (a test holds them equal).

With the ORM broker on the database the request writes to, the task row of a cycle made due now
(start, resume) is written in the request's own transaction: it is committed with the state change
or not at all. With another broker (Redis) it is sent once the transaction commits.
"""

from django.db import DEFAULT_DB_ALIAS, connection, transaction
from django_q.conf import Conf
from django_q.models import Schedule
from django_q.tasks import async_task

from runner import scheduling
from runner.models import AgentState

COLUMNS = (
    "func",
    "args",
    "kwargs",
    "schedule_type",
    "minutes",
    "next_run",
    "repeats",
    "intended_date_kwarg",
)


def schedule_values(agent, fires) -> dict:
    """The Schedule row of a running agent whose next slot fires at `fires` (as sync_schedule)."""
    return {
        "func": scheduling.SCHEDULED_TASK,
        "args": str(agent.pk),
        "kwargs": repr({"q_options": scheduling.task_options(agent.timeout_seconds)}),
        "schedule_type": Schedule.MINUTES,
        "minutes": agent.interval_minutes if agent.schedule_kind != "cron" else 1,
        "next_run": fires,
        "repeats": -1,
        "intended_date_kwarg": scheduling.SLOT_KWARG,
    }


def write_schedule(agent, *, fires=None):
    """Bring the agent's Schedule row in step with its state: upserted to fire at `fires` (by
    default its next slot's fire time) while it is running with a next run, else deleted."""
    name = scheduling.schedule_name(agent)
    if agent.state != AgentState.RUNNING or agent.next_run is None:
        Schedule.objects.filter(name=name).delete()
        return
    if fires is None:
        fires = scheduling.fire_time(agent, agent.next_run)
    values = schedule_values(agent, fires)
    field = Schedule._meta.get_field
    quote = connection.ops.quote_name
    table = quote(Schedule._meta.db_table)
    name_column = quote(field("name").column)
    assignments = ", ".join(f"{quote(field(column).column)} = %s" for column in COLUMNS)
    params = [field(column).get_db_prep_save(values[column], connection) for column in COLUMNS]
    update = f"UPDATE {table} SET {assignments} WHERE {name_column} = %s"
    insert_columns = ", ".join([name_column, *(quote(field(column).column) for column in COLUMNS)])
    placeholders = ", ".join(["%s"] * (len(COLUMNS) + 1))
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"WITH updated AS ({update} RETURNING 1) "
                f"INSERT INTO {table} ({insert_columns}) SELECT {placeholders} "
                "WHERE NOT EXISTS (SELECT 1 FROM updated)",
                [*params, name, name, *params],
            )
            return
        cursor.execute(update, [*params, name])
        if cursor.rowcount == 0:
            cursor.execute(
                f"INSERT INTO {table} ({insert_columns}) VALUES ({placeholders})", [name, *params]
            )


def queue_due_cycle(agent):
    """The agent's next slot is due now (start, resume): its row moves on to the following slot
    and the slot's task is queued, in the caller's transaction where the broker allows."""
    slot = agent.next_run
    write_schedule(agent, fires=scheduling.following_fire(agent, slot, slot))
    agent_id, options = agent.pk, scheduling.task_options(agent.timeout_seconds)

    def send():
        async_task(
            scheduling.SCHEDULED_TASK,
            agent_id,
            slot=slot.isoformat(),
            group=scheduling.schedule_name(agent),
            q_options=options,
        )

    if Conf.ORM == DEFAULT_DB_ALIAS and not Conf.SYNC:
        send()
    else:
        transaction.on_commit(send)
