-- Rights of the application role 'agent_runner_app' (python manage.py grantapprole agent_runner_app).
-- Run as the role that owns the tables (the role that runs `migrate`), after every `migrate`; safe to repeat:
-- every table and sequence for the app, the audit trail INSERT and SELECT only.
-- psql: psql -v ON_ERROR_STOP=1 -d postgres://OWNER@HOST:5432/DATABASE -f THIS_FILE
BEGIN;
DO $$ BEGIN EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), 'agent_runner_app'); END $$;
GRANT USAGE ON SCHEMA public TO "agent_runner_app";
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "agent_runner_app";
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO "agent_runner_app";
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO "agent_runner_app";
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO "agent_runner_app";
REVOKE ALL ON TABLE "runner_auditevent" FROM "agent_runner_app";
GRANT SELECT, INSERT ON TABLE "runner_auditevent" TO "agent_runner_app";
DO $$ BEGIN EXECUTE format('REVOKE ALL ON SEQUENCE %s FROM %I', pg_get_serial_sequence('"runner_auditevent"', 'id'), 'agent_runner_app'); END $$;
COMMIT;
