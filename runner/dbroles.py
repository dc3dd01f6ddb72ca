"""The production split of PostgreSQL roles: the owner migrates, the app role only works.

The append-only trigger on the audit trail stops UPDATE and DELETE, but the role that owns a
table may TRUNCATE it, disable its triggers or drop it. So the web and qcluster processes connect
as a role that owns nothing: it may read and write every table, except the audit trail, where it
may only INSERT and SELECT. `grant_statements` is that grant, run by the owner (the role that
runs `migrate`); `manage.py grantapprole` prints or applies it, and
`deploy/postgres-roles.sql` is its output for the role `agent_runner_app`.
"""

import re

from runner.models import AuditEvent

ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
TABLE_RIGHTS = "SELECT, INSERT, UPDATE, DELETE"
SEQUENCE_RIGHTS = "USAGE, SELECT, UPDATE"


def check_role_name(name):
    """Plain lower-case names only: they read the same quoted or not, in SQL and in psql."""
    if not ROLE_NAME.match(name):
        raise ValueError(
            f"{name!r} is not a plain role name (lower-case letters, digits and _, at most 63)."
        )
    return name


def grant_statements(app_role, owner=None):
    """SQL statements, in order, that give `app_role` the app's rights (idempotent).

    Run them as `owner` (the role that owns the tables and runs `migrate`), or as a superuser with
    `owner` named, so that the default privileges cover what later migrations create.
    """
    app = f'"{check_role_name(app_role)}"'
    for_owner = f' FOR ROLE "{check_role_name(owner)}"' if owner else ""
    audit = f'"{AuditEvent._meta.db_table}"'
    audit_pk = AuditEvent._meta.pk.column
    return [
        # PUBLIC may connect by default; say it outright for databases where that was revoked.
        "DO $$ BEGIN EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', "
        f"current_database(), '{app_role}'); END $$",
        f"GRANT USAGE ON SCHEMA public TO {app}",
        f"GRANT {TABLE_RIGHTS} ON ALL TABLES IN SCHEMA public TO {app}",
        f"GRANT {SEQUENCE_RIGHTS} ON ALL SEQUENCES IN SCHEMA public TO {app}",
        # Tables and sequences that later migrations create get the same rights.
        f"ALTER DEFAULT PRIVILEGES{for_owner} IN SCHEMA public "
        f"GRANT {TABLE_RIGHTS} ON TABLES TO {app}",
        f"ALTER DEFAULT PRIVILEGES{for_owner} IN SCHEMA public "
        f"GRANT {SEQUENCE_RIGHTS} ON SEQUENCES TO {app}",
        # The audit trail: append and read only. Its id is an identity column, which an INSERT
        # fills without any right on the sequence, so none is left (no setval either).
        f"REVOKE ALL ON TABLE {audit} FROM {app}",
        f"GRANT SELECT, INSERT ON TABLE {audit} TO {app}",
        "DO $$ BEGIN EXECUTE format('REVOKE ALL ON SEQUENCE %s FROM %I', "
        f"pg_get_serial_sequence('{audit}', '{audit_pk}'), '{app_role}'); END $$",
    ]


def grant_script(app_role, owner=None):
    """The statements as one psql script, in one transaction."""
    by = f"the owner {owner!r} or a superuser" if owner else "the role that owns the tables"
    command = " ".join(["grantapprole", app_role, *(["--owner", owner] if owner else [])])
    header = [
        f"-- Rights of the application role {app_role!r} (python manage.py {command}).",
        f"-- Run as {by} (the role that runs `migrate`), after every `migrate`; safe to repeat:",
        "-- every table and sequence for the app, the audit trail INSERT and SELECT only.",
        "-- psql: psql -v ON_ERROR_STOP=1 -d postgres://OWNER@HOST:5432/DATABASE -f THIS_FILE",
        "BEGIN;",
    ]
    return "\n".join([*header, *(f"{s};" for s in grant_statements(app_role, owner)), "COMMIT;"])
