"""Leave a default agent in place, and make the audit trail append-only on PostgreSQL.

The trigger refuses UPDATE and DELETE of audit events row by row, whoever asks (the ORM, the admin,
or psql). TRUNCATE is not a row event, so test-database flushes still work.
"""

from django.conf import settings
from django.db import migrations

APPEND_ONLY_SQL = """
CREATE OR REPLACE FUNCTION runner_auditevent_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'runner_auditevent is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS runner_auditevent_append_only ON runner_auditevent;
CREATE TRIGGER runner_auditevent_append_only
    BEFORE UPDATE OR DELETE ON runner_auditevent
    FOR EACH ROW EXECUTE FUNCTION runner_auditevent_append_only();
"""

DROP_SQL = """
DROP TRIGGER IF EXISTS runner_auditevent_append_only ON runner_auditevent;
DROP FUNCTION IF EXISTS runner_auditevent_append_only();
"""


def add_append_only_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(APPEND_ONLY_SQL, params=None)


def drop_append_only_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_SQL, params=None)


def create_default_agent(apps, schema_editor):
    Agent = apps.get_model("runner", "Agent")
    slug = settings.RUNNER_DEFAULT_AGENT
    Agent.objects.get_or_create(
        slug=slug,
        defaults={"name": "Default forecaster", "kind": "forecaster", "parameters": {}},
    )


class Migration(migrations.Migration):
    dependencies = [("runner", "0001_initial")]

    operations = [
        migrations.RunPython(add_append_only_trigger, drop_append_only_trigger),
        migrations.RunPython(create_default_agent, migrations.RunPython.noop),
    ]
