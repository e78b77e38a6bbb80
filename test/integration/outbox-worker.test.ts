// Delivery edge cases of the outbox worker, against real Postgres and SMTP.
import { afterAll, beforeAll, expect, it } from "vitest";
import { startTestEnv, type TestEnv } from "../support/app.js";

let env: TestEnv;
beforeAll(async () => {
  env = await startTestEnv();
});
afterAll(async () => {
  await env?.close();
});

async function statusOf(messageId: string, timeoutMs = 5_000): Promise<{ status: string; last_error: string | null; payload: Buffer | null }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { rows } = await env.app.db.query("SELECT status, last_error, payload FROM outbox WHERE message_id = $1", [messageId]);
    if (rows[0] && rows[0].status !== "pending" && rows[0].status !== "sending") return rows[0];
    if (Date.now() > deadline) return rows[0];
    await new Promise((r) => setTimeout(r, 100));
  }
}

it("marks a row it cannot decrypt (unknown pepper id) failed at once instead of retrying it forever", async () => {
  const messageId = "<undecryptable@test>";
  await env.app.db.query(
    `INSERT INTO outbox (tenant_id, email_id, recipient, locale, template, payload, key_id, expires_at, message_id)
     SELECT tenant_id, id, address, 'en', 'login', '\\x00112233'::bytea, 99, now() + interval '5 minutes', $1
     FROM emails WHERE address = $2 LIMIT 1`,
    [messageId, env.customer],
  );
  env.app.worker.wake();
  const row = await statusOf(messageId);
  expect(row.status).toBe("failed");
  expect(row.last_error).toContain("decrypt");
  expect(row.payload).toBeNull();
  expect(env.smtp.mails.filter((m) => m.to === env.customer)).toHaveLength(0);
});
