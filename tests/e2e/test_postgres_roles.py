"""The production role split on a real PostgreSQL: the owner migrates, the app role only works.

A fresh database owned by a fresh owner role is migrated by that owner, `grantapprole --apply`
gives a fresh login role the app's rights, and then, connected as that app role: the app's own
commands work (a cycle, a start that writes a django-q2 schedule and task, the cache), audit
events can be added and read, and every way of changing or removing them is refused."""

import json
import os
import secrets
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg import errors, sql

ROOT = Path(__file__).resolve().parents[2]


AUDIT = "runner_auditevent"


START_STOP = """
from django.conf import settings
from runner import services
from runner.actors import Actor
from runner.models import Agent
agent = Agent.objects.get(slug=settings.RUNNER_DEFAULT_AGENT)
services.agent_start(agent=agent, actor=Actor.cli(), reason="role test")
services.agent_stop(agent=Agent.objects.get(pk=agent.pk), actor=Actor.cli())
print(Agent.objects.get(pk=agent.pk).state)
"""


@contextmanager
def roles_and_database():
    """A new owner role, app role and database owned by the owner; all dropped afterwards.

    Roles belong to the whole PostgreSQL cluster, so their names are random and they are
    dropped even when the test fails. Each role gets a password, so this works beyond trust auth.
    """
    url = urlsplit(os.environ["DATABASE_URL"])
    suffix = secrets.token_hex(4)
    owner, app = f"ar_owner_{suffix}", f"ar_app_{suffix}"
    database = f"{url.path.lstrip('/')}_roles_{suffix}"
    passwords = {owner: secrets.token_hex(16), app: secrets.token_hex(16)}
    admin_url = url._replace(path="/postgres").geturl()

    def url_as(role):
        netloc = f"{role}:{passwords[role]}@{url.hostname}:{url.port or 5432}"
        return url._replace(netloc=netloc, path=f"/{database}").geturl()

    with psycopg.connect(admin_url, autocommit=True) as admin:
        try:
            for role in (owner, app):
                admin.execute(
                    sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                        sql.Identifier(role), sql.Literal(passwords[role])
                    )
                )
            admin.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(database), sql.Identifier(owner)
                )
            )
            superuser_url = url._replace(path=f"/{database}").geturl()
            yield url_as(owner), url_as(app), app, superuser_url
        finally:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
            )
            for role in (app, owner):
                admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def manage(database_url, *args):
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update(DATABASE_URL=database_url, DJANGO_ENV_FILE=os.devnull, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, f"manage.py {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def refused(connection, statement):
    """The statement fails for lack of privilege (or ownership), and changes nothing."""
    with pytest.raises(errors.InsufficientPrivilege) as raised:
        connection.execute(statement)
    return str(raised.value)


@pytest.mark.postgres
@pytest.mark.slow
def test_the_app_role_works_but_cannot_remove_or_rewrite_the_audit_trail():
    with roles_and_database() as (owner_url, app_url, app_role, superuser_url):
        manage(owner_url, "migrate", "--noinput")
        assert "Granted" in manage(owner_url, "grantapprole", app_role, "--apply")

        # The app's normal work, by the app's own code, connected as the app role.
        run = json.loads(manage(app_url, "runagent", "--once", "--json"))
        assert run["status"] == "succeeded", run
        # start writes the agent's django-q2 schedule and queues its first task; stop removes it.
        assert manage(app_url, "shell", "--no-imports", "-c", START_STOP).strip() == "stopped"
        cache_check = (
            "from django.core.cache import cache; cache.set('k', 7); print(cache.get('k'))"
        )
        assert manage(app_url, "shell", "--no-imports", "-c", cache_check).strip() == "7"

        with psycopg.connect(owner_url, autocommit=True) as as_owner:
            assert as_owner.execute("SELECT count(*) FROM django_q_ormq").fetchone()[0] >= 1
            assert as_owner.execute("SELECT count(*) FROM runner_cyclerun").fetchone()[0] >= 1
            sources = as_owner.execute(f"SELECT DISTINCT source FROM {AUDIT}").fetchall()
            assert sources == [("cli",)]
            events = as_owner.execute(f"SELECT count(*) FROM {AUDIT}").fetchone()[0]

        with psycopg.connect(app_url, autocommit=True) as as_app:
            assert as_app.execute("SELECT current_user").fetchone()[0] == app_role
            # INSERT and SELECT on the audit trail work.
            columns = (
                "agent_id, agent_slug, action, outcome, refusal_reason, source, state_before, "
                "state_after, changes, request_id"
            )
            as_app.execute(
                f"INSERT INTO {AUDIT} ({columns}, created_at, actor_username, reason) "
                f"SELECT {columns}, now(), 'psql', 'added by the app role' FROM {AUDIT} LIMIT 1"
            )
            assert as_app.execute(f"SELECT count(*) FROM {AUDIT}").fetchone()[0] == events + 1

            # Nothing else: not by rights, not by ownership, not by switching triggers off.
            assert "permission denied" in refused(as_app, f"UPDATE {AUDIT} SET reason = 'x'")
            assert "permission denied" in refused(as_app, f"DELETE FROM {AUDIT}")
            assert "permission denied" in refused(as_app, f"TRUNCATE {AUDIT}")
            for statement in (
                f"ALTER TABLE {AUDIT} DISABLE TRIGGER runner_auditevent_append_only",
                f"ALTER TABLE {AUDIT} DISABLE TRIGGER ALL",
                f"DROP TRIGGER runner_auditevent_append_only ON {AUDIT}",
                f"DROP TABLE {AUDIT}",
                f"ALTER TABLE {AUDIT} OWNER TO {app_role}",
            ):
                assert "must be owner" in refused(as_app, statement), statement
            # Nor can it swap the trigger's function for one that lets everything through.
            refused(
                as_app,
                "CREATE OR REPLACE FUNCTION runner_auditevent_append_only() RETURNS trigger "
                "AS $$ BEGIN RETURN NEW; END $$ LANGUAGE plpgsql",
            )
            refused(as_app, "SET session_replication_role = replica")  # would skip triggers
            refused(as_app, f"SELECT setval(pg_get_serial_sequence('{AUDIT}', 'id'), 1)")

        with psycopg.connect(owner_url, autocommit=True) as as_owner:
            assert as_owner.execute(f"SELECT count(*) FROM {AUDIT}").fetchone()[0] == events + 1
            enabled = as_owner.execute(
                "SELECT tgenabled FROM pg_trigger WHERE tgname = 'runner_auditevent_append_only'"
            ).fetchone()
            assert enabled == ("O",)
            # A table that a later migration creates (as the owner) is the app's at once.
            as_owner.execute(
                "CREATE TABLE runner_later (id bigint GENERATED BY DEFAULT AS IDENTITY "
                "PRIMARY KEY, note text)"
            )
        with psycopg.connect(app_url, autocommit=True) as as_app:
            as_app.execute("INSERT INTO runner_later (note) VALUES ('new table')")
            as_app.execute("UPDATE runner_later SET note = 'changed'")
            assert as_app.execute("SELECT note FROM runner_later").fetchall() == [("changed",)]

        # The app role cannot grant itself more.
        with pytest.raises(AssertionError, match="Run this as the owner of the tables"):
            manage(app_url, "grantapprole", app_role, "--apply")
        # Again (as after the next migrate), now by a superuser: the default privileges still
        # go to what the owner creates, and the audit trail stays append-only.
        manage(superuser_url, "grantapprole", app_role, "--apply")
        with psycopg.connect(owner_url, autocommit=True) as as_owner:
            as_owner.execute("CREATE TABLE runner_later2 (id bigint PRIMARY KEY)")
        with psycopg.connect(app_url, autocommit=True) as as_app:
            as_app.execute("INSERT INTO runner_later2 VALUES (1)")
            assert "permission denied" in refused(as_app, f"TRUNCATE {AUDIT}")
            assert "permission denied" in refused(as_app, f"DELETE FROM {AUDIT}")
            assert as_app.execute(f"SELECT count(*) FROM {AUDIT}").fetchone()[0] == events + 1
