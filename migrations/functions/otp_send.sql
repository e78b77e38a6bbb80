-- otp_send: a batch of passcode sends in one statement, one transaction and
-- one round trip (group commit: src/storage/otp-store.ts coalesces the sends
-- that arrive while earlier batches run; docs/adr/0009). Every argument is an
-- array with one element per send, except the limits, which are flattened:
-- send i owns the next p_limit_counts[i] elements of p_limit_keys,
-- p_limit_periods and p_limit_bursts. Each send gets its own verdict: one row
-- per send (send_index, 1-based), whatever the others' outcomes.
--
-- 1. Charge the rate limits (GCRA): all keys of the batch in ONE upsert, in
--    key order, so concurrent batches (and instances) never deadlock; each
--    row is charged optimistically for every send of the batch that uses it.
--    The upsert's result gives max(old tat, now) exactly (the new tat minus
--    the charge), from which the sends are then judged one by one in batch
--    order: a send passes when every one of its keys allows it, and only a
--    passing send is charged. What step 1 charged for refused sends is taken
--    back at the end. The rows stay locked
--    until the commit, so no other send sees a charge that is taken back.
-- 2. Find the address in the tenant; create it (and its user) when asked.
--    An address another user added but has not proven is not theirs yet.
-- 3. Supersede the live code, store the new code's hash and queue the mail
--    in the outbox (unless it is the sandbox). A send with a lease
--    (p_lease_ms) is one the accepting instance delivers itself: its row is
--    inserted already claimed ('sending', first attempt, leased), and the
--    send's result row carries what the mail needs (the tenant's sender and
--    branding, the custom template's text) so that instance renders it
--    without claiming, fetching or decrypting (docs/adr/0016). A send
--    without one queues a 'pending' row and the caller wakes a worker.
-- 4. Record the send, whatever its outcome, in the audit log.
-- Steps 1 and 2 run send by send; the codes, the mail and the audit rows of
-- the whole batch are then inserted by one statement each (fewer statements
-- per send: docs/adr/0009). Two sends to one address in one batch would both
-- insert a live code: the unique index refuses that, the batch fails and
-- each of its sends is retried alone (src/storage/group-commit.ts).
--
-- Rows a send writes besides the limits (emails, otp_codes) are per address,
-- and every send charges its address's limit key, so two batches that touch
-- the same address are already ordered by step 1.
--
-- The same statement runs whether or not the address exists, so the legacy
-- route charges limits identically for unknown addresses.
--
-- No pg_notify: NOTIFY serialises committing transactions on one lock; the
-- accepting instance wakes its own outbox worker and the others poll.
--
-- This file is re-applied whenever its content changes (src/storage/migrate.ts).
-- A change of arguments or result columns must DROP FUNCTION first.
DROP FUNCTION IF EXISTS otp_send(bigint, text, text[], double precision[], integer[], text, text, text, text, bytea,
  smallint, integer, bytea, text, text, text, text, boolean, text, text);
DROP FUNCTION IF EXISTS otp_send(bigint[], text[], integer[], text[], double precision[], integer[], text[], text[], text[],
  text[], bytea[], smallint[], integer[], bytea[], text[], text[], text[], text[], boolean[], text[], text[], text[]);
DROP FUNCTION IF EXISTS otp_send(bigint[], text[], integer[], text[], double precision[], integer[], text[], text[], text[],
  text[], bytea[], smallint[], integer[], bytea[], text[], text[], text[], text[], boolean[], text[], text[], text[], integer[]);

CREATE FUNCTION otp_send(
  p_tenant_id      bigint[],
  p_address        text[],
  p_limit_counts   integer[],           -- how many of the limit elements each send owns
  p_limit_keys     text[],
  p_limit_periods  double precision[],  -- milliseconds between requests
  p_limit_bursts   integer[],
  p_create_status  text[],              -- NULL: never create; else status of a new user
  p_new_user_id    text[],
  p_new_email_id   text[],
  p_for_user_id    text[],              -- attach a new address to this user instead
  p_code_hash      bytea[],
  p_key_id         smallint[],
  p_ttl_seconds    integer[],
  p_payload        bytea[],
  p_message_id     text[],
  p_locale         text[],
  p_ip_address     text[],
  p_user_agent     text[],
  p_deliver        boolean[],           -- false: store the code, queue no mail (sandbox)
  p_login_template  text[],             -- a tenant's custom template for login mail, or NULL
  p_signup_template text[],             -- likewise for sign-up mail
  p_traceparent    text[],              -- the traced send's W3C traceparent, or NULL
  p_lease_ms       integer[] DEFAULT NULL -- NULL: queue the mail for any worker; else the caller delivers it, leased this long (a default, so the previous release's call still works)
) RETURNS TABLE (
  send_index     integer,
  outcome        text,     -- sent | rate_limited | email_not_found | user_not_found
  retry_after_ms bigint,
  limited_key    text,
  user_id        text,
  email_id       text,
  user_created   boolean,
  -- Only for a send with a lease that queued mail: its outbox row, and
  -- what rendering the mail needs.
  mail_outbox_id     bigint,
  mail_template      text,     -- login | signup
  mail_queued_at     timestamptz,
  mail_tenant_name   text,
  mail_sender_name   text,
  mail_sender_address text,
  mail_reply_to      text,
  mail_logo_url      text,
  mail_accent_color  text,
  mail_support_url   text,
  mail_subject       text,     -- the custom template's, when the send chose one that exists
  mail_text          text,
  mail_html          text
)
LANGUAGE plpgsql AS $$
DECLARE
  v_now      timestamptz := clock_timestamp();
  v_keys     text[];             -- the batch's distinct keys, in key order
  v_at       double precision[]; -- per key: ms after v_now of its tat as charged so far
  v_skip     double precision[]; -- per key: ms charged in step 1 for sends that were refused
  v_refused  boolean := false;
  v_first    integer := 1;       -- the current send's first limit element
  v_last     integer;
  v_k        integer;
  v_excess   double precision;
  v_worst_ms double precision;
  v_worst    text;
  v_email    emails%ROWTYPE;
  v_found    boolean;            -- the address is the tenant's, as far as this send may see
  v_taken    boolean;            -- this send took the address from another user's unproven claim
  v_tenant   tenants%ROWTYPE;    -- the last tenant a leased send read (batches are mostly one tenant's)
  v_custom   text;
  v_outbox   regclass := pg_get_serial_sequence('outbox', 'id')::regclass;
  -- What steps 3 and 4 insert, one element per code (c_) and per audit row
  -- (a_); every array gets every element (NULL too), so they stay aligned.
  c_n        integer := 0;
  c_send     integer[];
  c_email    text[];
  c_template text[];
  c_outbox   bigint[];
  a_n        integer := 0;
  a_send     integer[];
  a_user     text[];
  a_email    text[];
  a_outcome  text[];
  a_reason   text[];
BEGIN
  -- 1. Charge every key for all its sends, in key order; read back
  -- max(old tat, now) as the new tat less that charge.
  WITH wanted AS (
    SELECT l.key, sum(l.period) AS charge
    FROM unnest(p_limit_keys, p_limit_periods) AS l(key, period)
    GROUP BY l.key
  ), charged AS (
    INSERT INTO rate_limits AS rl (key, tat)
    SELECT w.key, v_now + make_interval(secs => w.charge / 1000) FROM wanted w ORDER BY w.key
    ON CONFLICT (key) DO UPDATE SET tat = greatest(rl.tat, v_now) + (excluded.tat - v_now)
    RETURNING rl.key, rl.tat
  )
  SELECT array_agg(c.key ORDER BY c.key),
         array_agg(extract(epoch FROM c.tat - v_now) * 1000 - w.charge ORDER BY c.key),
         array_agg(0::double precision ORDER BY c.key)
  INTO v_keys, v_at, v_skip
  FROM charged c JOIN wanted w ON w.key = c.key;

  FOR i IN 1 .. coalesce(cardinality(p_address), 0) LOOP
    send_index := i;
    retry_after_ms := NULL;
    limited_key := NULL;
    user_id := NULL;
    email_id := NULL;
    user_created := false;
    v_taken := false;
    mail_outbox_id := NULL;
    mail_template := NULL;
    mail_queued_at := NULL;
    mail_tenant_name := NULL;
    mail_sender_name := NULL;
    mail_sender_address := NULL;
    mail_reply_to := NULL;
    mail_logo_url := NULL;
    mail_accent_color := NULL;
    mail_support_url := NULL;
    mail_subject := NULL;
    mail_text := NULL;
    mail_html := NULL;
    -- Judge send i on its keys: tat' = max(tat, now) + period, allowed while
    -- tat' - now <= burst * period. The key furthest over is reported.
    v_last := v_first + p_limit_counts[i] - 1;
    v_worst_ms := NULL;
    FOR j IN v_first .. v_last LOOP
      v_k := array_position(v_keys, p_limit_keys[j]);
      v_excess := v_at[v_k] + p_limit_periods[j] - p_limit_bursts[j] * p_limit_periods[j];
      IF v_worst_ms IS NULL OR v_excess > v_worst_ms THEN
        v_worst_ms := v_excess;
        v_worst := p_limit_keys[j];
      END IF;
    END LOOP;

    IF v_worst_ms > 0 THEN
      v_refused := true;
      FOR j IN v_first .. v_last LOOP
        v_k := array_position(v_keys, p_limit_keys[j]);
        v_skip[v_k] := v_skip[v_k] + p_limit_periods[j];
      END LOOP;
      v_first := v_last + 1;
      a_n := a_n + 1;
      a_send[a_n] := i;
      a_user[a_n] := NULL;
      a_email[a_n] := NULL;
      a_outcome[a_n] := 'rate_limited';
      a_reason[a_n] := split_part(v_worst, ':', 1);
      outcome := 'rate_limited';
      -- Counted from now, not from v_now: a send that waited for another
      -- one's lock on the same row was judged at its arrival (v_now), but
      -- its caller hears the answer after the wait, which the other send's
      -- charge already includes; from v_now it would be told up to the wait
      -- longer (20.001 s, sent as Retry-After: 21, for a 20 s period).
      retry_after_ms := greatest(1, ceil(v_worst_ms - extract(epoch FROM clock_timestamp() - v_now) * 1000))::bigint;
      limited_key := v_worst;
      RETURN NEXT;
      CONTINUE;
    END IF;
    FOR j IN v_first .. v_last LOOP
      v_k := array_position(v_keys, p_limit_keys[j]);
      v_at[v_k] := v_at[v_k] + p_limit_periods[j];
    END LOOP;
    v_first := v_last + 1;

    -- 2. The address.
    SELECT * INTO v_email FROM emails e WHERE e.tenant_id = p_tenant_id[i] AND e.address = p_address[i];
    v_found := FOUND;

    -- An address another user added and has not proven (pending) is not
    -- theirs yet: a send by the address alone must not reach that user, or
    -- anyone could add a stranger's address to their own account and wait
    -- for the stranger to sign in to it. login_or_create gives the address a
    -- user of its own (the claim ends, its code superseded in step 3); any
    -- other send finds no such address.
    IF v_found AND p_for_user_id[i] IS NULL AND v_email.pending_until IS NOT NULL AND NOT v_email.verified THEN
      IF p_create_status[i] IS NOT NULL THEN
        INSERT INTO users (id, tenant_id, status) VALUES (p_new_user_id[i], p_tenant_id[i], p_create_status[i]);
        UPDATE emails e SET user_id = p_new_user_id[i], pending_until = NULL WHERE e.id = v_email.id RETURNING * INTO v_email;
        user_created := true;
        v_taken := true;
      ELSE
        v_found := false;
      END IF;
    END IF;

    IF NOT v_found AND p_for_user_id[i] IS NOT NULL THEN
      PERFORM 1 FROM users u WHERE u.id = p_for_user_id[i] AND u.tenant_id = p_tenant_id[i];
      IF NOT FOUND THEN
        a_n := a_n + 1;
        a_send[a_n] := i;
        a_user[a_n] := p_for_user_id[i];
        a_email[a_n] := NULL;
        a_outcome[a_n] := 'user_not_found';
        a_reason[a_n] := NULL;
        outcome := 'user_not_found';
        RETURN NEXT;
        CONTINUE;
      END IF;
      INSERT INTO emails AS e (id, tenant_id, user_id, address, pending_until)
      VALUES (p_new_email_id[i], p_tenant_id[i], p_for_user_id[i], p_address[i], v_now + interval '5 minutes')
      RETURNING * INTO v_email;
    ELSIF NOT v_found AND p_create_status[i] IS NOT NULL THEN
      INSERT INTO emails AS e (id, tenant_id, user_id, address)
      VALUES (p_new_email_id[i], p_tenant_id[i], p_new_user_id[i], p_address[i])
      ON CONFLICT (tenant_id, address) DO NOTHING
      RETURNING * INTO v_email;
      IF FOUND THEN
        INSERT INTO users (id, tenant_id, status) VALUES (p_new_user_id[i], p_tenant_id[i], p_create_status[i]);
        user_created := true;
      ELSE
        -- A concurrent send created it first; use theirs.
        SELECT * INTO v_email FROM emails e WHERE e.tenant_id = p_tenant_id[i] AND e.address = p_address[i];
      END IF;
    ELSIF NOT v_found OR (p_for_user_id[i] IS NOT NULL AND v_email.user_id <> p_for_user_id[i]) THEN
      -- Unknown, or the address belongs to someone else in this tenant.
      a_n := a_n + 1;
      a_send[a_n] := i;
      a_user[a_n] := p_for_user_id[i];
      a_email[a_n] := NULL;
      a_outcome[a_n] := 'email_not_found';
      a_reason[a_n] := NULL;
      outcome := 'email_not_found';
      RETURN NEXT;
      CONTINUE;
    END IF;

    -- 3. A new address has no code to supersede (one taken from a claim has).
    IF NOT user_created OR v_taken THEN
      UPDATE otp_codes c SET superseded_at = v_now
      WHERE c.email_id = v_email.id AND c.superseded_at IS NULL AND c.used_at IS NULL;
    END IF;
    c_n := c_n + 1;
    c_send[c_n] := i;
    c_email[c_n] := v_email.id;
    c_template[c_n] := CASE WHEN v_email.verified THEN 'login' ELSE 'signup' END;
    -- The row's id is drawn here so the result can name it (every element
    -- assigned: an array first assigned at [2] would start at 2).
    c_outbox[c_n] := CASE WHEN p_deliver[i] THEN nextval(v_outbox) END;
    IF p_deliver[i] AND p_lease_ms[i] IS NOT NULL THEN
      mail_outbox_id := c_outbox[c_n];
      mail_template := c_template[c_n];
      mail_queued_at := now();
      IF v_tenant.id IS DISTINCT FROM p_tenant_id[i] THEN
        SELECT * INTO v_tenant FROM tenants t WHERE t.id = p_tenant_id[i];
      END IF;
      mail_tenant_name := v_tenant.name;
      mail_sender_name := v_tenant.mail_from_name;
      mail_sender_address := v_tenant.mail_from_address;
      mail_reply_to := v_tenant.reply_to;
      mail_logo_url := v_tenant.logo_url;
      mail_accent_color := v_tenant.accent_color;
      mail_support_url := v_tenant.support_url;
      v_custom := CASE WHEN mail_template = 'login' THEN p_login_template[i] ELSE p_signup_template[i] END;
      IF v_custom IS NOT NULL THEN
        SELECT tp.subject, tp.text_body, tp.html_body INTO mail_subject, mail_text, mail_html
        FROM templates tp WHERE tp.id = v_custom AND tp.tenant_id = p_tenant_id[i];
      END IF;
    END IF;

    a_n := a_n + 1;
    a_send[a_n] := i;
    a_user[a_n] := v_email.user_id;
    a_email[a_n] := v_email.id;
    a_outcome[a_n] := 'ok';
    a_reason[a_n] := CASE WHEN NOT p_deliver[i] THEN 'sandbox' WHEN user_created THEN 'user_created' END;

    outcome := 'sent';
    user_id := v_email.user_id;
    email_id := v_email.id;
    RETURN NEXT;
  END LOOP;

  -- 3. The batch's codes and mail.
  IF c_n > 0 THEN
    INSERT INTO otp_codes (tenant_id, email_id, code_hash, key_id, created_at, expires_at, ip_address, user_agent)
    SELECT p_tenant_id[c.i], c.email_id, p_code_hash[c.i], p_key_id[c.i], v_now,
           v_now + make_interval(secs => p_ttl_seconds[c.i]), p_ip_address[c.i], p_user_agent[c.i]
    FROM unnest(c_send, c_email) AS c(i, email_id);

    INSERT INTO outbox (id, tenant_id, email_id, recipient, locale, template, custom_template_id, payload, key_id,
                        expires_at, message_id, traceparent, status, attempts, next_attempt_at)
    OVERRIDING SYSTEM VALUE
    SELECT c.outbox_id, p_tenant_id[c.i], c.email_id, p_address[c.i], p_locale[c.i], c.template,
           CASE WHEN c.template = 'login' THEN p_login_template[c.i] ELSE p_signup_template[c.i] END, p_payload[c.i],
           p_key_id[c.i], v_now + make_interval(secs => p_ttl_seconds[c.i]), p_message_id[c.i], p_traceparent[c.i],
           CASE WHEN p_lease_ms[c.i] IS NULL THEN 'pending' ELSE 'sending' END,
           CASE WHEN p_lease_ms[c.i] IS NULL THEN 0 ELSE 1 END,
           now() + make_interval(secs => coalesce(p_lease_ms[c.i], 0)::double precision / 1000)
    FROM unnest(c_send, c_email, c_template, c_outbox) AS c(i, email_id, template, outbox_id)
    WHERE p_deliver[c.i];
  END IF;

  -- 4. Every send's audit row, whatever its outcome.
  INSERT INTO audit_events (tenant_id, action, user_id, email_id, ip_address, user_agent, outcome, reason)
  SELECT p_tenant_id[a.i], 'send', a.user_id, a.email_id, p_ip_address[a.i], p_user_agent[a.i], a.outcome, a.reason
  FROM unnest(a_send, a_user, a_email, a_outcome, a_reason) AS a(i, user_id, email_id, outcome, reason);

  -- Take back what refused sends did not use.
  IF v_refused THEN
    UPDATE rate_limits rl
    SET tat = rl.tat - make_interval(secs => u.skip / 1000)
    FROM unnest(v_keys, v_skip) AS u(key, skip)
    WHERE rl.key = u.key AND u.skip > 0;
  END IF;
END;
$$;
