-- The traceparent of a traced send is now passed to otp_send() as an
-- argument, one per send of a batch (several sends share one transaction,
-- so a setting for the transaction could not tell them apart). The column
-- keeps its meaning; its default, which read that setting, goes.
ALTER TABLE outbox ALTER COLUMN traceparent DROP DEFAULT;
