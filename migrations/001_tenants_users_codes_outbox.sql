-- Tenants: Stytch-style projects (string ids, secret kept only as a slow hash)
-- and legacy portal businesses (numeric ids). Everything else hangs off one.
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
CREATE TABLE emails (
  id         text PRIMARY KEY,
  tenant_id  bigint NOT NULL REFERENCES tenants (id),
  user_id    text NOT NULL REFERENCES users (id) DEFERRABLE INITIALLY DEFERRED,
  address    text NOT NULL,
  verified   boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (tenant_id, address)
);
CREATE INDEX emails_user ON emails (user_id);

-- Codes are kept only as an HMAC under the pepper named by key_id. At most one
-- live code per email: a new send supersedes the previous one.
CREATE TABLE otp_codes (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id       bigint NOT NULL REFERENCES tenants (id),
  email_id        text NOT NULL REFERENCES emails (id),
  code_hash       bytea NOT NULL,
  key_id          smallint NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now(),
  expires_at      timestamptz NOT NULL,
  superseded_at   timestamptz,
  used_at         timestamptz,
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
  tenant_id       bigint NOT NULL REFERENCES tenants (id),
  email_id        text NOT NULL REFERENCES emails (id),
  recipient       text NOT NULL,
  locale          text NOT NULL,
  template        text NOT NULL CHECK (template IN ('login', 'signup')),
  payload         bytea,
  key_id          smallint NOT NULL,
  expires_at      timestamptz NOT NULL,
  message_id      text NOT NULL UNIQUE,
  status          text NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'expired')),
  attempts        integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  claimed_until   timestamptz,
  last_error      text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  sent_at         timestamptz
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE status IN ('pending', 'sending');

-- One row per rate-limit key, holding the GCRA theoretical arrival time.
-- A row whose tat has passed is the same as no row, so old rows may be pruned.
CREATE TABLE rate_limits (
  key text PRIMARY KEY,
  tat timestamptz NOT NULL
);
CREATE INDEX rate_limits_tat ON rate_limits (tat);
