"""Run rollups, kept in step with the runs table by database triggers, and filled from the runs.

Queued and running runs are left out (reports count those few from the runs), so a run enters
the rollups once, when it settles, and a cycle's claim and heartbeats fire nothing. A trigger on
`runner_cyclerun` moves a settled run's contribution (count, duration sum and max, start
delay count, one duration and one delay histogram bucket) out of the rollup row it was in and
into the one it belongs to now, on every insert, delete and update of the columns that matter
(agent, queued_at, status, trigger, duration_ms, started_at, slot). So the rollups hold whatever
code writes runs: services, pruning, the admin, psql. Buckets: 0 for values under 1 ms, else
floor(8 * log2(ms)) + 1 (eight per doubling). The SQL is written out here, not imported, so this
migration keeps meaning what it meant; `runner/reports/rollups.py` computes the same in the rebuild
(the tests hold them together). Also: a partial index on failures by queued_at, for the report's
failure sections.
"""

import django.db.models.deletion
from django.db import migrations, models

MEASURED = ("agent_id", "queued_at", "status", '"trigger"', "duration_ms", "started_at", "slot")
FAILURES = "('failed', 'timed_out', 'abandoned')"

POSTGRES_SQL = r"""
CREATE OR REPLACE FUNCTION runner_rollup_bucket(v double precision) RETURNS smallint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN v < 1 THEN 0 ELSE (floor(ln(v) / ln(2.0::float8) * 8) + 1)::smallint END $$;

CREATE OR REPLACE FUNCTION runner_rollup_delay_ms(slot timestamptz, started_at timestamptz)
    RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT date_part('epoch', started_at - slot) * 1000.0 $$;

-- One run in or out (sign +1 / -1) of its (agent, day, status, trigger) row.
CREATE OR REPLACE FUNCTION runner_rollup_shift(r runner_cyclerun, sign integer) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    d date := (r.queued_at AT TIME ZONE 'UTC')::date;
    has_delay integer := (r.slot IS NOT NULL AND r.started_at IS NOT NULL)::integer;
    has_duration integer := (r.duration_ms IS NOT NULL)::integer;
    left_runs bigint;
BEGIN
    IF sign > 0 THEN
        INSERT INTO runner_runrollup AS t
            (agent_id, day, status, "trigger", runs, duration_count, duration_sum, duration_max,
             delay_count)
        VALUES (r.agent_id, d, r.status, r."trigger", 1, has_duration, COALESCE(r.duration_ms, 0),
                r.duration_ms, has_delay)
        ON CONFLICT (agent_id, day, status, "trigger") DO UPDATE SET
            runs = t.runs + 1,
            duration_count = t.duration_count + EXCLUDED.duration_count,
            duration_sum = t.duration_sum + EXCLUDED.duration_sum,
            duration_max = GREATEST(t.duration_max, EXCLUDED.duration_max),
            delay_count = t.delay_count + EXCLUDED.delay_count;
        RETURN;
    END IF;
    UPDATE runner_runrollup t SET
        runs = t.runs - 1,
        duration_count = t.duration_count - has_duration,
        duration_sum = t.duration_sum - COALESCE(r.duration_ms, 0),
        delay_count = t.delay_count - has_delay
    WHERE t.agent_id = r.agent_id AND t.day = d AND t.status = r.status AND t."trigger" = r."trigger"
    RETURNING t.runs INTO left_runs;
    IF left_runs IS NULL THEN
        RETURN;
    ELSIF left_runs <= 0 THEN
        DELETE FROM runner_runrollup t WHERE t.agent_id = r.agent_id AND t.day = d
            AND t.status = r.status AND t."trigger" = r."trigger";
    ELSIF r.duration_ms IS NOT NULL THEN
        -- The max cannot be undone by arithmetic: read it again when the run leaving held it.
        UPDATE runner_runrollup t SET duration_max = (
            SELECT max(c.duration_ms) FROM runner_cyclerun c
            WHERE c.agent_id = r.agent_id AND c.status = r.status AND c."trigger" = r."trigger"
              AND c.queued_at >= (d::timestamp AT TIME ZONE 'UTC')
              AND c.queued_at < ((d + 1)::timestamp AT TIME ZONE 'UTC'))
        WHERE t.agent_id = r.agent_id AND t.day = d AND t.status = r.status
          AND t."trigger" = r."trigger" AND t.duration_max <= r.duration_ms;
    END IF;
END $$;

-- One value in or out of its histogram bucket.
CREATE OR REPLACE FUNCTION runner_rollup_bucket_shift(
    agent bigint, d date, m smallint, b smallint, sign integer) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    left_runs bigint;
BEGIN
    IF b IS NULL THEN
        RETURN;
    ELSIF sign > 0 THEN
        INSERT INTO runner_runrollupbucket AS t (agent_id, day, measure, bucket, runs)
        VALUES (agent, d, m, b, 1)
        ON CONFLICT (agent_id, day, measure, bucket) DO UPDATE SET runs = t.runs + 1;
        RETURN;
    END IF;
    UPDATE runner_runrollupbucket t SET runs = t.runs - 1
    WHERE t.agent_id = agent AND t.day = d AND t.measure = m AND t.bucket = b
    RETURNING t.runs INTO left_runs;
    IF left_runs <= 0 THEN
        DELETE FROM runner_runrollupbucket t
        WHERE t.agent_id = agent AND t.day = d AND t.measure = m AND t.bucket = b;
    END IF;
END $$;

CREATE OR REPLACE FUNCTION runner_cyclerun_rollup() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    -- Queued and running runs are not rolled up (reports count them from the runs): a run
    -- enters the rollups once, when it settles.
    old_in boolean := TG_OP <> 'INSERT' AND OLD.status NOT IN ('queued', 'running');
    new_in boolean := TG_OP <> 'DELETE' AND NEW.status NOT IN ('queued', 'running');
    same_place boolean;
    old_day date; new_day date;
    old_duration smallint; new_duration smallint; old_delay smallint; new_delay smallint;
BEGIN
    IF old_in THEN
        old_day := (OLD.queued_at AT TIME ZONE 'UTC')::date;
        old_duration := runner_rollup_bucket(OLD.duration_ms);
        old_delay := runner_rollup_bucket(runner_rollup_delay_ms(OLD.slot, OLD.started_at));
    END IF;
    IF new_in THEN
        new_day := (NEW.queued_at AT TIME ZONE 'UTC')::date;
        new_duration := runner_rollup_bucket(NEW.duration_ms);
        new_delay := runner_rollup_bucket(runner_rollup_delay_ms(NEW.slot, NEW.started_at));
    END IF;
    same_place := old_in AND new_in AND OLD.agent_id = NEW.agent_id AND old_day = new_day;
    IF NOT (same_place AND OLD.status = NEW.status AND OLD."trigger" = NEW."trigger"
            AND OLD.duration_ms IS NOT DISTINCT FROM NEW.duration_ms
            AND (old_delay IS NULL) = (new_delay IS NULL)) THEN
        IF old_in THEN PERFORM runner_rollup_shift(OLD, -1); END IF;
        IF new_in THEN PERFORM runner_rollup_shift(NEW, 1); END IF;
    END IF;
    IF NOT (same_place AND old_duration IS NOT DISTINCT FROM new_duration) THEN
        IF old_in THEN
            PERFORM runner_rollup_bucket_shift(OLD.agent_id, old_day, 1::smallint, old_duration, -1);
        END IF;
        IF new_in THEN
            PERFORM runner_rollup_bucket_shift(NEW.agent_id, new_day, 1::smallint, new_duration, 1);
        END IF;
    END IF;
    IF NOT (same_place AND old_delay IS NOT DISTINCT FROM new_delay) THEN
        IF old_in THEN
            PERFORM runner_rollup_bucket_shift(OLD.agent_id, old_day, 2::smallint, old_delay, -1);
        END IF;
        IF new_in THEN
            PERFORM runner_rollup_bucket_shift(NEW.agent_id, new_day, 2::smallint, new_delay, 1);
        END IF;
    END IF;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS runner_cyclerun_rollup_insert ON runner_cyclerun;
CREATE TRIGGER runner_cyclerun_rollup_insert AFTER INSERT ON runner_cyclerun FOR EACH ROW
    WHEN (NEW.status NOT IN ('queued', 'running'))
    EXECUTE FUNCTION runner_cyclerun_rollup();
DROP TRIGGER IF EXISTS runner_cyclerun_rollup_delete ON runner_cyclerun;
CREATE TRIGGER runner_cyclerun_rollup_delete AFTER DELETE ON runner_cyclerun FOR EACH ROW
    WHEN (OLD.status NOT IN ('queued', 'running'))
    EXECUTE FUNCTION runner_cyclerun_rollup();
DROP TRIGGER IF EXISTS runner_cyclerun_rollup_update ON runner_cyclerun;
CREATE TRIGGER runner_cyclerun_rollup_update
    AFTER UPDATE OF agent_id, queued_at, status, "trigger", duration_ms, started_at, slot
    ON runner_cyclerun FOR EACH ROW
    WHEN ((OLD.status NOT IN ('queued', 'running') OR NEW.status NOT IN ('queued', 'running'))
          AND (OLD.agent_id, OLD.queued_at, OLD.status, OLD."trigger", OLD.duration_ms,
               OLD.started_at, OLD.slot)
              IS DISTINCT FROM
              (NEW.agent_id, NEW.queued_at, NEW.status, NEW."trigger", NEW.duration_ms,
               NEW.started_at, NEW.slot))
    EXECUTE FUNCTION runner_cyclerun_rollup();

INSERT INTO runner_runrollup
    (agent_id, day, status, "trigger", runs, duration_count, duration_sum, duration_max, delay_count)
SELECT agent_id, (queued_at AT TIME ZONE 'UTC')::date, status, "trigger", count(*),
       count(duration_ms), COALESCE(sum(duration_ms), 0), max(duration_ms),
       count(*) FILTER (WHERE slot IS NOT NULL AND started_at IS NOT NULL)
FROM runner_cyclerun WHERE status NOT IN ('queued', 'running') GROUP BY 1, 2, 3, 4;

INSERT INTO runner_runrollupbucket (agent_id, day, measure, bucket, runs)
SELECT agent_id, day, measure, bucket, count(*) FROM (
    SELECT agent_id, (queued_at AT TIME ZONE 'UTC')::date AS day, 1 AS measure,
           runner_rollup_bucket(duration_ms) AS bucket
    FROM runner_cyclerun WHERE duration_ms IS NOT NULL AND status NOT IN ('queued', 'running')
    UNION ALL
    SELECT agent_id, (queued_at AT TIME ZONE 'UTC')::date, 2,
           runner_rollup_bucket(runner_rollup_delay_ms(slot, started_at))
    FROM runner_cyclerun WHERE slot IS NOT NULL AND started_at IS NOT NULL
      AND status NOT IN ('queued', 'running')
) AS x GROUP BY 1, 2, 3, 4;
"""

POSTGRES_DROP_SQL = """
DROP TRIGGER IF EXISTS runner_cyclerun_rollup_insert ON runner_cyclerun;
DROP TRIGGER IF EXISTS runner_cyclerun_rollup_delete ON runner_cyclerun;
DROP TRIGGER IF EXISTS runner_cyclerun_rollup_update ON runner_cyclerun;
DROP FUNCTION IF EXISTS runner_cyclerun_rollup();
DROP FUNCTION IF EXISTS runner_rollup_bucket_shift(bigint, date, smallint, smallint, integer);
DROP FUNCTION IF EXISTS runner_rollup_shift(runner_cyclerun, integer);
DROP FUNCTION IF EXISTS runner_rollup_delay_ms(timestamptz, timestamptz);
DROP FUNCTION IF EXISTS runner_rollup_bucket(double precision);
"""

# SQLite: no stored functions, so each trigger body spells its statements out, for OLD or NEW.
SQLITE_BUCKET = (
    "CASE WHEN {v} < 1 THEN 0 ELSE CAST(floor(ln({v}) / ln(2.0) * 8) AS INTEGER) + 1 END"
)
SQLITE_DELAY = "(julianday({r}.started_at) - julianday({r}.slot)) * 86400000.0"


def settled(r):
    """Queued and running runs are not rolled up: a run enters the rollups when it settles."""
    return f"{r}.status NOT IN ('queued', 'running')"


def _sqlite_measures(r):
    """(measure, bucket expression, condition) of the row named r ('OLD' or 'NEW')."""
    delay = SQLITE_DELAY.format(r=r)
    return [
        (1, SQLITE_BUCKET.format(v=f"{r}.duration_ms"), f"{r}.duration_ms IS NOT NULL"),
        (2, SQLITE_BUCKET.format(v=delay), f"{r}.slot IS NOT NULL AND {r}.started_at IS NOT NULL"),
    ]


def _sqlite_add(r):
    statements = [
        f"""INSERT INTO runner_runrollup
            (agent_id, day, status, "trigger", runs, duration_count, duration_sum, duration_max,
             delay_count)
        SELECT {r}.agent_id, date({r}.queued_at), {r}.status, {r}."trigger", 1,
               {r}.duration_ms IS NOT NULL, COALESCE({r}.duration_ms, 0), {r}.duration_ms,
               {r}.slot IS NOT NULL AND {r}.started_at IS NOT NULL
        WHERE {settled(r)}
        ON CONFLICT (agent_id, day, status, "trigger") DO UPDATE SET
            runs = runs + 1,
            duration_count = duration_count + excluded.duration_count,
            duration_sum = duration_sum + excluded.duration_sum,
            duration_max = CASE WHEN duration_max IS NULL OR excluded.duration_max > duration_max
                                THEN excluded.duration_max ELSE duration_max END,
            delay_count = delay_count + excluded.delay_count"""
    ]
    for measure, bucket, condition in _sqlite_measures(r):
        statements.append(
            f"""INSERT INTO runner_runrollupbucket (agent_id, day, measure, bucket, runs)
            SELECT {r}.agent_id, date({r}.queued_at), {measure}, {bucket}, 1
            WHERE {condition} AND {settled(r)}
            ON CONFLICT (agent_id, day, measure, bucket) DO UPDATE SET runs = runs + 1"""
        )
    return statements


def _sqlite_remove(r):
    key = (
        f"""agent_id = {r}.agent_id AND day = date({r}.queued_at) AND status = {r}.status"""
        f""" AND "trigger" = {r}."trigger\""""
    )
    statements = [
        f"""UPDATE runner_runrollup SET
            runs = runs - 1,
            duration_count = duration_count - ({r}.duration_ms IS NOT NULL),
            duration_sum = duration_sum - COALESCE({r}.duration_ms, 0),
            delay_count = delay_count - ({r}.slot IS NOT NULL AND {r}.started_at IS NOT NULL)
        WHERE {key} AND {settled(r)}""",
        f"DELETE FROM runner_runrollup WHERE {key} AND runs <= 0",
        f"""UPDATE runner_runrollup SET duration_max = (
            SELECT max(c.duration_ms) FROM runner_cyclerun c
            WHERE c.agent_id = {r}.agent_id AND c.status = {r}.status
              AND c."trigger" = {r}."trigger" AND c.queued_at >= date({r}.queued_at)
              AND c.queued_at < date({r}.queued_at, '+1 day'))
        WHERE {key} AND {r}.duration_ms IS NOT NULL AND duration_max <= {r}.duration_ms""",
    ]
    for measure, bucket, condition in _sqlite_measures(r):
        bucket_key = (
            f"agent_id = {r}.agent_id AND day = date({r}.queued_at) AND measure = {measure}"
            f" AND bucket = {bucket}"
        )
        statements.append(
            f"UPDATE runner_runrollupbucket SET runs = runs - 1 WHERE {bucket_key} AND {condition}"
            f" AND {settled(r)}"
        )
        statements.append(f"DELETE FROM runner_runrollupbucket WHERE {bucket_key} AND runs <= 0")
    return statements


def _sqlite_trigger(name, event, statements, when=""):
    body = ";\n".join(statements)
    return f"CREATE TRIGGER {name} AFTER {event} ON runner_cyclerun FOR EACH ROW {when}\nBEGIN\n{body};\nEND"


def sqlite_sql():
    changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in MEASURED)
    changed = f"({settled('OLD')} OR {settled('NEW')}) AND ({changed})"
    delay = SQLITE_DELAY.format(r="runner_cyclerun")
    return [
        _sqlite_trigger(
            "runner_cyclerun_rollup_insert", "INSERT", _sqlite_add("NEW"), f"WHEN {settled('NEW')}"
        ),
        _sqlite_trigger(
            "runner_cyclerun_rollup_delete",
            "DELETE",
            _sqlite_remove("OLD"),
            f"WHEN {settled('OLD')}",
        ),
        _sqlite_trigger(
            "runner_cyclerun_rollup_update",
            f"UPDATE OF {', '.join(MEASURED)}",
            _sqlite_remove("OLD") + _sqlite_add("NEW"),
            when=f"WHEN {changed}",
        ),
        """INSERT INTO runner_runrollup
            (agent_id, day, status, "trigger", runs, duration_count, duration_sum, duration_max,
             delay_count)
        SELECT agent_id, date(queued_at), status, "trigger", count(*), count(duration_ms),
               COALESCE(sum(duration_ms), 0), max(duration_ms),
               sum(slot IS NOT NULL AND started_at IS NOT NULL)
        FROM runner_cyclerun WHERE status NOT IN ('queued', 'running') GROUP BY 1, 2, 3, 4""",
        f"""INSERT INTO runner_runrollupbucket (agent_id, day, measure, bucket, runs)
        SELECT agent_id, day, measure, bucket, count(*) FROM (
            SELECT agent_id, date(queued_at) AS day, 1 AS measure,
                   {SQLITE_BUCKET.format(v="duration_ms")} AS bucket
            FROM runner_cyclerun
            WHERE duration_ms IS NOT NULL AND status NOT IN ('queued', 'running')
            UNION ALL
            SELECT agent_id, date(queued_at), 2, {SQLITE_BUCKET.format(v=delay)}
            FROM runner_cyclerun WHERE slot IS NOT NULL AND started_at IS NOT NULL
              AND status NOT IN ('queued', 'running')
        ) AS x GROUP BY 1, 2, 3, 4""",
    ]


SQLITE_DROP = [
    f"DROP TRIGGER IF EXISTS runner_cyclerun_rollup_{event}"
    for event in ("insert", "delete", "update")
]


def add_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_SQL, params=None)
    elif vendor == "sqlite":
        for statement in sqlite_sql():
            schema_editor.execute(statement, params=None)


def drop_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_DROP_SQL, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_DROP:
            schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [("runner", "0009_django_q_indexes")]

    operations = [
        migrations.CreateModel(
            name="RunRollup",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("day", models.DateField(help_text="UTC day of the runs' queued_at.")),
                ("status", models.CharField(max_length=16)),
                ("trigger", models.CharField(max_length=16)),
                ("runs", models.BigIntegerField(default=0)),
                ("duration_count", models.BigIntegerField(default=0, help_text="Runs with a duration.")),
                ("duration_sum", models.BigIntegerField(default=0, help_text="Sum of their durations (ms).")),
                ("duration_max", models.BigIntegerField(blank=True, null=True)),
                ("delay_count", models.BigIntegerField(default=0, help_text="Runs with a slot that started (they have a start delay).")),
                ("agent", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="+", to="runner.agent")),
            ],
            options={
                "indexes": [models.Index(fields=["day"], name="runrollup_day")],
                "constraints": [models.UniqueConstraint(fields=("agent", "day", "status", "trigger"), name="runrollup_key")],
            },
        ),
        migrations.CreateModel(
            name="RunRollupBucket",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("day", models.DateField()),
                ("measure", models.PositiveSmallIntegerField(choices=[(1, "duration"), (2, "delay")])),
                ("bucket", models.SmallIntegerField()),
                ("runs", models.BigIntegerField(default=0)),
                ("agent", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="+", to="runner.agent")),
            ],
            options={
                "indexes": [models.Index(fields=["day", "measure", "bucket", "agent", "runs"], name="runrollupbucket_day")],
                "constraints": [models.UniqueConstraint(fields=("agent", "day", "measure", "bucket"), name="runrollupbucket_key")],
            },
        ),
        migrations.RunSQL(
            f"CREATE INDEX cyclerun_failure_queued ON runner_cyclerun (queued_at) WHERE status IN {FAILURES}",
            "DROP INDEX IF EXISTS cyclerun_failure_queued",
        ),
        migrations.RunPython(add_triggers, drop_triggers),
    ]  # fmt: skip
