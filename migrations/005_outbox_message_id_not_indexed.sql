-- outbox.message_id loses its unique index. Every send inserted an entry
-- into it, and both updates of a delivery (claim, then sent) added another,
-- since neither is a HOT update: three random-order inserts into a text
-- B-tree per mail. Nothing looks a row up by it but the dev mailbox's claim,
-- which reaches its rows through outbox_due first; Message-IDs are unique by
-- construction (a random UUID each, src/domain/otp-sender.ts).
-- Figures: bench/RESULTS.md, docs/adr/0009.
ALTER TABLE outbox DROP CONSTRAINT outbox_message_id_key;
