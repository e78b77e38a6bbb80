-- What the service's runtime role needs when instances start with
-- MIGRATE_ON_START=false: read and write rows, call otp_send(), no DDL.
-- Run it with psql, connected to the service's database AS THE ROLE THAT RUNS
-- THE MIGRATIONS (the owner of the tables), after creating the runtime role:
--
--   CREATE ROLE otp_runtime LOGIN PASSWORD '…';     -- or your platform's IAM login
--   psql "$MIGRATOR_DATABASE_URL" -f deploy/postgres/runtime-grants.sql
--
-- The default privileges make tables, sequences and functions that later
-- migrations create usable by the runtime role too. test/deploy/
-- production-start.test.ts runs the service under exactly these grants.

DO $$ BEGIN
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO otp_runtime', current_database());
END $$;
GRANT USAGE ON SCHEMA public TO otp_runtime;

GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO otp_runtime;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO otp_runtime;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO otp_runtime;

ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO otp_runtime;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO otp_runtime;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT EXECUTE ON FUNCTIONS TO otp_runtime;

-- The server-side bound on every statement (the pool's own timeout is
-- client-side only, so that it works through PgBouncer).
ALTER ROLE otp_runtime SET statement_timeout = '10s';
