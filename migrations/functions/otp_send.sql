-- otp_send: a whole passcode send in one statement and one round trip.
--
-- 1. Charge every rate limit (GCRA) atomically: the keys are locked in a
--    fixed order and either all are charged or none is.
-- 2. Find the address in the tenant; create it (and its user) when asked.
-- 3. Supersede the live code, store the new code's hash and queue the mail
--    in the outbox (unless it is the sandbox); the caller wakes a worker.
-- 4. Record the send, whatever its outcome, in the audit log.
--
-- The same statement runs whether or not the address exists, so the legacy
-- route charges limits identically for unknown addresses.
--
-- Charging all limits in one INSERT ... ON CONFLICT (and taking the charge
-- back when one is exceeded) keeps the send to few row versions. No
-- pg_notify: NOTIFY serialises committing transactions on one lock, so
-- concurrent sends could not share a WAL flush; the accepting instance wakes
-- its own outbox worker and the others poll.
--
-- This file is re-applied whenever its content changes (src/storage/migrate.ts).
-- A change of arguments or result columns must DROP FUNCTION first.
CREATE OR REPLACE FUNCTION otp_send(
  p_tenant_id      bigint,
  p_address        text,
  p_limit_keys     text[],
  p_limit_periods  double precision[],  -- milliseconds between requests
  p_limit_bursts   integer[],
  p_create_status  text,                -- NULL: never create; else status of a new user
  p_new_user_id    text,
  p_new_email_id   text,
  p_for_user_id    text,                -- attach a new address to this user instead
  p_code_hash      bytea,
  p_key_id         smallint,
  p_ttl_seconds    integer,
  p_payload        bytea,
  p_message_id     text,
  p_locale         text,
  p_ip_address     text,
  p_user_agent     text,
  p_deliver        boolean,              -- false: store the code, queue no mail (sandbox)
  p_login_template  text,                -- a tenant's custom template for login mail, or NULL
  p_signup_template text                 -- likewise for sign-up mail
) RETURNS TABLE (
  outcome        text,     -- sent | rate_limited | email_not_found | user_not_found
  retry_after_ms bigint,
  limited_key    text,
  user_id        text,
  email_id       text,
  user_created   boolean,
  outbox_id      bigint
)
LANGUAGE plpgsql AS $$
DECLARE
  v_now      timestamptz := clock_timestamp();
  v_worst_ms double precision;
  v_worst    text;
  v_email    emails%ROWTYPE;
  v_created  boolean := false;
  v_template text;
  v_outbox   bigint;
BEGIN
  -- 1. Rate limits, charged in one statement: each key's row is created or
  -- advanced, in key order so concurrent sends never deadlock. The new tat
  -- tells whether the key allowed the send: tat' = max(tat, now) + period,
  -- allowed while tat' - now <= burst * period. The key furthest over its
  -- limit is the one reported.
  WITH charged AS (
    INSERT INTO rate_limits AS rl (key, tat)
    SELECT l.key, v_now + make_interval(secs => l.period / 1000)
    FROM unnest(p_limit_keys, p_limit_periods) AS l(key, period)
    ORDER BY l.key
    ON CONFLICT (key) DO UPDATE SET tat = greatest(rl.tat, v_now) + (excluded.tat - v_now)
    RETURNING rl.key, rl.tat
  )
  SELECT c.key, extract(epoch FROM c.tat - v_now) * 1000 - l.burst * l.period
  INTO v_worst, v_worst_ms
  FROM charged c
  JOIN unnest(p_limit_keys, p_limit_bursts, p_limit_periods) AS l(key, burst, period) ON l.key = c.key
  ORDER BY 2 DESC
  LIMIT 1;

  IF v_worst_ms > 0 THEN
    -- Over a limit: charge none. Taking the period back leaves each row at
    -- max(old tat, now), which GCRA treats exactly as the old tat. The rows
    -- are still locked by this transaction, so no other send saw the charge.
    UPDATE rate_limits rl
    SET tat = rl.tat - make_interval(secs => l.period / 1000)
    FROM unnest(p_limit_keys, p_limit_periods) AS l(key, period)
    WHERE rl.key = l.key;
    INSERT INTO audit_events (tenant_id, action, ip_address, user_agent, outcome, reason)
    VALUES (p_tenant_id, 'send', p_ip_address, p_user_agent, 'rate_limited', split_part(v_worst, ':', 1));
    RETURN QUERY SELECT 'rate_limited'::text, ceil(v_worst_ms)::bigint, v_worst, NULL::text, NULL::text, false, NULL::bigint;
    RETURN;
  END IF;

  -- 2. The address.
  SELECT * INTO v_email FROM emails e WHERE e.tenant_id = p_tenant_id AND e.address = p_address;

  IF NOT FOUND AND p_for_user_id IS NOT NULL THEN
    PERFORM 1 FROM users u WHERE u.id = p_for_user_id AND u.tenant_id = p_tenant_id;
    IF NOT FOUND THEN
      INSERT INTO audit_events (tenant_id, action, user_id, ip_address, user_agent, outcome)
      VALUES (p_tenant_id, 'send', p_for_user_id, p_ip_address, p_user_agent, 'user_not_found');
      RETURN QUERY SELECT 'user_not_found'::text, NULL::bigint, NULL::text, NULL::text, NULL::text, false, NULL::bigint;
      RETURN;
    END IF;
    INSERT INTO emails AS e (id, tenant_id, user_id, address, pending_until)
    VALUES (p_new_email_id, p_tenant_id, p_for_user_id, p_address, v_now + interval '5 minutes')
    RETURNING * INTO v_email;
  ELSIF NOT FOUND AND p_create_status IS NOT NULL THEN
    INSERT INTO emails AS e (id, tenant_id, user_id, address)
    VALUES (p_new_email_id, p_tenant_id, p_new_user_id, p_address)
    ON CONFLICT (tenant_id, address) DO NOTHING
    RETURNING * INTO v_email;
    IF FOUND THEN
      INSERT INTO users (id, tenant_id, status) VALUES (p_new_user_id, p_tenant_id, p_create_status);
      v_created := true;
    ELSE
      -- A concurrent send created it first; use theirs.
      SELECT * INTO v_email FROM emails e WHERE e.tenant_id = p_tenant_id AND e.address = p_address;
    END IF;
  ELSIF NOT FOUND THEN
    INSERT INTO audit_events (tenant_id, action, ip_address, user_agent, outcome)
    VALUES (p_tenant_id, 'send', p_ip_address, p_user_agent, 'email_not_found');
    RETURN QUERY SELECT 'email_not_found'::text, NULL::bigint, NULL::text, NULL::text, NULL::text, false, NULL::bigint;
    RETURN;
  ELSIF p_for_user_id IS NOT NULL AND v_email.user_id <> p_for_user_id THEN
    -- The address belongs to someone else in this tenant.
    INSERT INTO audit_events (tenant_id, action, user_id, ip_address, user_agent, outcome)
    VALUES (p_tenant_id, 'send', p_for_user_id, p_ip_address, p_user_agent, 'email_not_found');
    RETURN QUERY SELECT 'email_not_found'::text, NULL::bigint, NULL::text, NULL::text, NULL::text, false, NULL::bigint;
    RETURN;
  END IF;

  -- 3. The code and the mail.
  UPDATE otp_codes c SET superseded_at = v_now
  WHERE c.email_id = v_email.id AND c.superseded_at IS NULL AND c.used_at IS NULL;

  INSERT INTO otp_codes (tenant_id, email_id, code_hash, key_id, created_at, expires_at, ip_address, user_agent)
  VALUES (p_tenant_id, v_email.id, p_code_hash, p_key_id, v_now, v_now + make_interval(secs => p_ttl_seconds),
          p_ip_address, p_user_agent);

  v_template := CASE WHEN v_email.verified THEN 'login' ELSE 'signup' END;

  IF p_deliver THEN
    INSERT INTO outbox (tenant_id, email_id, recipient, locale, template, custom_template_id, payload, key_id,
                        expires_at, message_id)
    VALUES (p_tenant_id, v_email.id, p_address, p_locale, v_template,
            CASE WHEN v_template = 'login' THEN p_login_template ELSE p_signup_template END, p_payload, p_key_id,
            v_now + make_interval(secs => p_ttl_seconds), p_message_id)
    RETURNING id INTO v_outbox;
  END IF;

  INSERT INTO audit_events (tenant_id, action, user_id, email_id, ip_address, user_agent, outcome, reason)
  VALUES (p_tenant_id, 'send', v_email.user_id, v_email.id, p_ip_address, p_user_agent, 'ok',
          CASE WHEN NOT p_deliver THEN 'sandbox' WHEN v_created THEN 'user_created' END);

  RETURN QUERY SELECT 'sent'::text, NULL::bigint, NULL::text, v_email.user_id, v_email.id, v_created, v_outbox;
END;
$$;
