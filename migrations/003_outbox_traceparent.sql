-- The W3C traceparent of the traced send that queued each mail, so that its
-- delivery, by whichever instance claims the row, joins the send's trace. A
-- traced send sets otp.traceparent for its own transaction only
-- (src/storage/otp-store.ts, SEND_SQL_TRACED) and the column takes it as its
-- default; every other insert leaves it NULL. No function changes.
ALTER TABLE outbox ADD COLUMN traceparent text DEFAULT nullif(current_setting('otp.traceparent', true), '');
