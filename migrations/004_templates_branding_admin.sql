-- Mail people want to receive, and tenants an operator can run: branding
-- per tenant, custom templates, secret rotation with a grace period.

ALTER TABLE tenants
  ADD COLUMN reply_to       text,
  ADD COLUMN logo_url       text,
  ADD COLUMN accent_color   text,
  ADD COLUMN support_url    text,
  -- After a rotation the previous secret keeps working until this time.
  ADD COLUMN previous_secret_hash       text,
  ADD COLUMN previous_secret_expires_at timestamptz;

-- A tenant's own templates, in the small placeholder language of
-- src/mail/template-language.ts; checked when saved.
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
