// SMTP refuses connections for 30 s while sends keep arriving, then comes
// back on the same port. The promises: every accepted send is delivered
// exactly once once SMTP is back; rows that were retried say so (attempts > 1,
// last_error); a code that expired before it could be delivered is marked
// 'expired' and never mailed; and no accepted send is given up while its code
// is still valid.
//
// Two service processes, each on its own database:
//   A: OUTBOX_MAX_ATTEMPTS=100, so that the delivery promise is checked
//      without the attempt cap getting in the way;
//   B: the default OUTBOX_MAX_ATTEMPTS (8), whose SMTP server stays down for
//      the whole test (about 70 s), with 100 sends at the start: it checks
//      the last promise against the shipped configuration, and counts what it
//      gave up 30 s into the outage and at the end.
// OUTBOX_POLL_MS=200 so retries happen within the test. The backoff is capped
// at 60 s, so after SMTP is back a row can wait up to a minute: the test
// waits for that, bounded at 90 s.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../src/storage/embedded.js";
import { countBy, demoCredentials, killAll, postJson, sleep, startService, waitFor, type Service } from "./support/service.js";
import { startFaultSmtp, type FaultSmtp } from "./support/smtp.js";
import { FAULTS_ENABLED, freshDatabase, RUN, tempDir, type FaultDatabase } from "./support/suite.js";

const OUTAGE_MS = 30_000;
const SENDS_DURING_OUTAGE = 50;
const B_SENDS = 100;
const SEND = "/v1/otps/email/login_or_create";

interface Row {
  recipient: string;
  message_id: string;
  status: string;
  attempts: number;
  last_error: string | null;
  payload: Buffer | null;
  code_valid: boolean;
}

describe.runIf(FAULTS_ENABLED)("SMTP refusing connections for 30 s while sends keep arriving", () => {
  let dbA: FaultDatabase;
  let dbB: FaultDatabase;
  let smtp: FaultSmtp;
  let dataA: Awaited<ReturnType<typeof tempDir>>;
  let dataB: Awaited<ReturnType<typeof tempDir>>;
  let a: Service | undefined;
  let b: Service | undefined;

  const during = Array.from({ length: SENDS_DURING_OUTAGE }, (_, i) => `down-${i}-${RUN}@example.com`);
  const expiring = `expiring-${RUN}@example.com`;
  const bSends = Array.from({ length: B_SENDS }, (_, i) => `b-${i}-${RUN}@example.com`);
  const statuses: number[] = [];
  const bStatuses: number[] = [];
  let expiringStatus = 0;
  let rowsA: Row[] = [];
  let rowsB: Row[] = [];
  let expiringRow: Row | undefined;
  let drainedAfterMs = 0;
  let bGivenUpAt30s = 0;
  let bSentAt = 0;
  let outageEnd = 0;

  const rows = async (db: FaultDatabase, recipients: string[]) =>
    (
      await db.pool.query<Row>(
        `SELECT recipient, message_id, status, attempts, last_error, payload, expires_at > now() AS code_valid
         FROM outbox WHERE recipient = ANY($1)`,
        [recipients],
      )
    ).rows;

  beforeAll(async () => {
    [dbA, dbB, smtp, dataA, dataB] = await Promise.all([freshDatabase(), freshDatabase(), startFaultSmtp(), tempDir("down-a"), tempDir("down-b")]);
    const common = { SEED_DEMO: "true", OUTBOX_POLL_MS: "200" };
    // B's SMTP server: a port nothing listens on.
    const nowhere = `smtp://127.0.0.1:${await freePort()}`;
    [a, b] = await Promise.all([
      startService("smtp-down-a", { ...common, SMTP_URL: smtp.url, DATABASE_URL: dbA.url, DATA_DIR: dataA.path, OUTBOX_MAX_ATTEMPTS: "100" }),
      startService("smtp-down-b-defaults", { ...common, SMTP_URL: nowhere, DATABASE_URL: dbB.url, DATA_DIR: dataB.path }),
    ]);
    const authA = { authorization: demoCredentials(dataA.path).basic };
    const authB = { authorization: demoCredentials(dataB.path).basic };

    // The path works before the outage.
    const warm = `warm-${RUN}@example.com`;
    expect((await postJson(a.url, SEND, { email: warm, expiration_minutes: 10 }, authA)).status).toBe(200);
    await waitFor("the warm-up mail", () => (smtp.acceptedTo(warm).length === 1 ? true : undefined), 10_000);

    await smtp.stop();
    const outageStart = Date.now();

    // B: 200 sends right at the start of the outage, 20 at a time.
    bSentAt = Date.now();
    const bLoad = (async () => {
      for (let i = 0; i < bSends.length; i += 20) {
        const batch = await Promise.all(bSends.slice(i, i + 20).map((email) => postJson(b!.url, SEND, { email, expiration_minutes: 10 }, authB)));
        bStatuses.push(...batch.map((x) => x.status));
      }
    })();

    // A: a send every 600 ms over the outage, and one whose code expires during it.
    const aLoad = (async () => {
      for (let i = 0; i < during.length; i++) {
        const at = outageStart + (i * (OUTAGE_MS - 1_500)) / during.length;
        await sleep(Math.max(0, at - Date.now()));
        const res = await postJson(a!.url, SEND, { email: during[i], expiration_minutes: 10 }, authA);
        statuses.push(res.status);
        if (i === 3) {
          const exp = await postJson(a!.url, SEND, { email: expiring, expiration_minutes: 10 }, authA);
          expiringStatus = exp.status;
          // The code now expires 3 s from now, long before SMTP is back.
          await dbA.pool.query("UPDATE outbox SET expires_at = now() + interval '3 seconds' WHERE recipient = $1", [expiring]);
          await dbA.pool.query("UPDATE otp_codes SET expires_at = now() + interval '3 seconds' WHERE email_id IN (SELECT email_id FROM outbox WHERE recipient = $1)", [expiring]);
        }
      }
    })();
    await Promise.all([aLoad, bLoad]);
    expect(smtp.accepted.filter((m) => m.at > outageStart)).toHaveLength(0);
    await sleep(Math.max(0, outageStart + OUTAGE_MS - Date.now()));
    bGivenUpAt30s = (await rows(dbB, bSends)).filter((r) => r.status === "failed" && r.code_valid).length;
    await smtp.start();
    outageEnd = Date.now();

    await waitFor(
      "A's rows to be delivered after the outage",
      async () => {
        const r = await rows(dbA, during);
        return r.length === during.length && r.every((x) => x.status === "sent") ? r : undefined;
      },
      90_000,
      250,
    );
    drainedAfterMs = Date.now() - outageEnd;
    // Room for a duplicate to show up, had there been one.
    await sleep(3_000);
    rowsA = await rows(dbA, during);
    expiringRow = (await rows(dbA, [expiring]))[0];
    rowsB = await rows(dbB, bSends);
  });

  afterAll(async () => {
    await killAll([a, b]);
    await smtp?.close();
    await Promise.all([dbA?.drop(), dbB?.drop()]);
    await Promise.all([dataA?.remove(), dataB?.remove()]);
  });

  it("accepts every send during the outage", () => {
    console.log(`[smtp-down] A: ${statuses.length} sends during the ${OUTAGE_MS / 1000} s outage, answers ${JSON.stringify(countBy(statuses, (s) => s))}`);
    expect(statuses).toEqual(during.map(() => 200));
    expect(expiringStatus).toBe(200);
    expect(bStatuses).toEqual(bSends.map(() => 200));
  });

  it("delivers every accepted send exactly once after SMTP is back", () => {
    const perRecipient = during.map((to) => smtp.acceptedTo(to).length);
    const duplicates = smtp.duplicates();
    console.log(
      `[smtp-down] A: accepted ${during.length}, delivered ${perRecipient.filter((n) => n > 0).length}, ` +
        `deliveries per recipient ${JSON.stringify(countBy(perRecipient, (n) => n))}, duplicate Message-IDs ${duplicates.size}, ` +
        `all delivered ${(drainedAfterMs / 1000).toFixed(1)} s after SMTP came back`,
    );
    expect(perRecipient).toEqual(during.map(() => 1));
    expect(duplicates.size).toBe(0);
    // The mail carries the row's stable Message-ID.
    const byRecipient = new Map(rowsA.map((r) => [r.recipient, r.message_id]));
    for (const to of during) expect(smtp.acceptedTo(to)[0]!.messageId).toBe(byRecipient.get(to));
  });

  it("records the retries: attempts > 1 and a last_error on every row sent during the outage", () => {
    console.log(`[smtp-down] A: attempts per row ${JSON.stringify(countBy(rowsA, (r) => r.attempts))}; a last_error: ${JSON.stringify(rowsA[0]?.last_error)}`);
    for (const r of rowsA) {
      expect(r.status, r.recipient).toBe("sent");
      expect(r.attempts, r.recipient).toBeGreaterThan(1);
      expect(r.last_error, r.recipient).toMatch(/ECONNREFUSED|connect|421|Connection/i);
      expect(r.payload, "the code is wiped once sent").toBeNull();
    }
  });

  it("marks a send whose code expired during the outage 'expired' and never mails it", () => {
    console.log(`[smtp-down] A: the expiring send ended ${expiringRow?.status} after ${expiringRow?.attempts} attempts; mails to it: ${smtp.acceptedTo(expiring).length}`);
    expect(expiringRow?.status).toBe("expired");
    expect(expiringRow?.payload).toBeNull();
    expect(smtp.acceptedTo(expiring)).toHaveLength(0);
  });

  // Retries go on while the code is valid (equal-jitter backoff; the attempt
  // cap is only a backstop), so an outage loses no send whose code is good.
  it("gives up no accepted send while its code is still valid (default OUTBOX_MAX_ATTEMPTS)", () => {
    const given = rowsB.filter((r) => r.status === "failed" && r.code_valid);
    console.log(
      `[smtp-down] B (defaults, SMTP down throughout): accepted ${bStatuses.filter((s) => s === 200).length}/${B_SENDS}; ` +
        `given up with 9+ minutes of the code left: ${bGivenUpAt30s} after 30 s of outage, ${given.length} after ${((Date.now() - bSentAt) / 1000).toFixed(0)} s ` +
        `(rows ${JSON.stringify(countBy(rowsB, (r) => r.status))}; e.g. ${JSON.stringify(given[0]?.last_error)})`,
    );
    expect(given).toHaveLength(0);
  });
});
