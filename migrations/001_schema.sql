-- Tenants: Stytch-style projects (string ids, secret kept only as a slow hash)
-- and legacy portal businesses (numeric ids), each with its mail branding.
-- Everything else hangs off one.
--
-- Tenants are never deleted, and the tenant_id of otp_codes, outbox and
-- audit_events copies emails.tenant_id (itself checked) or an authenticated
-- tenant lookup, so those three tables carry no foreign key to tenants: each
-- such check would lock the tenant's row (FOR KEY SHARE) in every concurrent
-- send, and Postgres would track those lockers as a multixact on that one row
-- (figures in bench/RESULTS.md).
CREATE TABLE tenants (
  id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  kind              text NOT NULL CHECK (kind IN ('project', 'business')),
  external_id       text NOT NULL,
  name              text NOT NULL,
  live              boolean NOT NULL DEFAULT false,
  secret_hash       text,
  mail_from_name    text,
  mail_from_address text,
  default_locale    text NOT NULL DEFAULT 'en',
  reply_to          text,
  logo_url          text,
  accent_color      text,
  support_url       text,
  -- After a rotation the previous secret keeps working until this time.
  previous_secret_hash       text,
  previous_secret_expires_at timestamptz,
  created_at        timestamptz NOT NULL DEFAULT now(),
  UNIQUE (kind, external_id),
  CHECK (kind <> 'project' OR secret_hash IS NOT NULL)
);

CREATE TABLE users (
  id         text PRIMARY KEY,
  tenant_id  bigint NOT NULL REFERENCES tenants (id),
  status     text NOT NULL CHECK (status IN ('active', 'pending')),
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX users_tenant ON users (tenant_id);

-- An address is unique within a tenant. The user reference is deferred so a
-- send can claim the address first and create its user second, in one
-- transaction, without racing another send for the same new address.
-- consecutive_failures / locked_until: the lock after too many failed
-- attempts. pending_until: an address added to an existing user stays only
-- if it is verified before then; unverified ones past it are pruned.
CREATE TABLE emails (
  id         text PRIMARY KEY,
  tenant_id  bigint NOT NULL REFERENCES tenants (id),
  user_id    text NOT NULL REFERENCES users (id) DEFERRABLE INITIALLY DEFERRED,
  address    text NOT NULL,
  verified   boolean NOT NULL DEFAULT false,
  consecutive_failures integer NOT NULL DEFAULT 0,
  locked_until  timestamptz,
  pending_until timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (tenant_id, address)
);
CREATE INDEX emails_user ON emails (user_id);

-- Codes are kept only as an HMAC under the pepper named by key_id. At most one
-- live code per email: a new send supersedes the previous one; a code that
-- used up its tries is dead (exhausted_at), like a used one.
CREATE TABLE otp_codes (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id       bigint NOT NULL, -- no foreign key: see tenants
  email_id        text NOT NULL REFERENCES emails (id),
  code_hash       bytea NOT NULL,
  key_id          smallint NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now(),
  expires_at      timestamptz NOT NULL,
  superseded_at   timestamptz,
  used_at         timestamptz,
  exhausted_at    timestamptz,
  failed_attempts integer NOT NULL DEFAULT 0,
  ip_address      text,
  user_agent      text
);
CREATE UNIQUE INDEX otp_codes_one_live ON otp_codes (email_id)
  WHERE superseded_at IS NULL AND used_at IS NULL;

-- The durable outbox. The code travels only encrypted (payload, AES-GCM under
-- the pepper key_id, bound to message_id) and is wiped once the row is done.
CREATE TABLE outbox (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id       bigint NOT NULL, -- no foreign key: see tenants
  email_id        text NOT NULL REFERENCES emails (id),
  recipient       text NOT NULL,
  locale          text NOT NULL,
  template        text NOT NULL CHECK (template IN ('login', 'signup')),
  -- The tenant's own template chosen for this mail, if any.
  custom_template_id text,
  payload         bytea,
  key_id          smallint NOT NULL,
  expires_at      timestamptz NOT NULL,
  message_id      text NOT NULL UNIQUE,
  status          text NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'expired')),
  attempts        integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  last_error      text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  sent_at         timestamptz
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE status IN ('pending', 'sending');

-- One row per rate-limit key, holding the GCRA theoretical arrival time.
-- A row whose tat has passed is the same as no row, so old rows may be pruned.
-- No index on tat, and free space on every page: charging a limit is then a
-- HOT update that touches no index (the periodic prune scans the table).
CREATE TABLE rate_limits (
  key text PRIMARY KEY,
  tat timestamptz NOT NULL
) WITH (fillfactor = 50);

-- Opaque session tokens are kept only as SHA-256 hashes (they are 256-bit
-- random values, so a fast hash suffices).
CREATE TABLE sessions (
  id               text PRIMARY KEY,
  tenant_id        bigint NOT NULL REFERENCES tenants (id),
  user_id          text NOT NULL REFERENCES users (id),
  token_hash       bytea NOT NULL UNIQUE,
  started_at       timestamptz NOT NULL,
  last_accessed_at timestamptz NOT NULL,
  expires_at       timestamptz NOT NULL,
  revoked_at       timestamptz,
  ip_address       text,
  user_agent       text,
  factors          jsonb NOT NULL DEFAULT '[]',
  custom_claims    jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX sessions_user ON sessions (user_id);

-- JWT signing keys: the private JWK only AES-GCM-sealed under the pepper
-- named by pepper_id, bound to the kid.
CREATE TABLE signing_keys (
  kid            text PRIMARY KEY,
  public_jwk     jsonb NOT NULL,
  private_sealed bytea NOT NULL,
  pepper_id      smallint NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  retired_at     timestamptz
);

-- Every send, authenticate and exchange; never a code. Rows are only ever
-- added: a trigger refuses updates, deletes and truncation.
CREATE TABLE audit_events (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id   bigint NOT NULL, -- no foreign key: see tenants
  occurred_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  action      text NOT NULL CHECK (action IN ('send', 'authenticate', 'exchange')),
  user_id     text,
  email_id    text,
  ip_address  text,
  user_agent  text,
  outcome     text NOT NULL,
  reason      text
);
CREATE INDEX audit_events_tenant_time ON audit_events (tenant_id, occurred_at);

CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_events is append-only';
END;
$$;
CREATE TRIGGER audit_events_no_update BEFORE UPDATE OR DELETE ON audit_events
  FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
  FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();

-- A tenant's own templates, in the small placeholder language of
-- src/domain/template-language.ts; checked when saved.
CREATE TABLE templates (
  id         text PRIMARY KEY,
  tenant_id  bigint NOT NULL REFERENCES tenants (id),
  kind       text NOT NULL CHECK (kind IN ('login', 'signup')),
  name       text NOT NULL,
  subject    text NOT NULL,
  text_body  text NOT NULL,
  html_body  text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX templates_tenant ON templates (tenant_id);
