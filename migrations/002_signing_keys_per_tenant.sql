-- Signing keys per tenant: each project and each business signs its JWTs
-- with its own keys and publishes only those in its own JWKS, so a relying
-- party that checks a token against its tenant's key set never accepts
-- another tenant's token.
--
-- Keys made before this belong to no tenant: they were one key for every
-- tenant, which is what this migration ends. They are dropped, so JWTs they
-- signed (session JWTs live 5 minutes, legacy tokens LEGACY_TOKEN_TTL_MINUTES)
-- stop verifying; each tenant gets its first key when it next signs.
DELETE FROM signing_keys;
ALTER TABLE signing_keys ADD COLUMN tenant_id bigint NOT NULL REFERENCES tenants (id);
CREATE INDEX signing_keys_tenant ON signing_keys (tenant_id, created_at);
