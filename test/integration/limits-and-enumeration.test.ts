// Rate limits hold across instances under concurrency, and the legacy route
// cannot be used to tell a customer from a stranger: same answer, same
// limits, but mail only for the customer. Real Postgres, real SMTP.
import { randomUUID } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newId } from "../../src/domain/ids.js";
import { PgAdminStore } from "../../src/storage/admin-store.js";
import { sleep } from "../support/answers.js";
import { addTestUser, settledOutbox, startTestEnv, type TestEnv } from "../support/app.js";

let env: TestEnv;
let urls: [string, string];
beforeAll(async () => {
  env = await startTestEnv();
  const second = await env.startInstance();
  urls = [env.url, second.url];
});
afterAll(async () => {
  await env?.close();
});

const mailsTo = (address: string) => env.smtp.mails.filter((m) => m.to === address);

/** Waits until `count` mails to `address` have arrived. */
async function waitForMailsTo(address: string, count: number, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (mailsTo(address).length < count) {
    if (Date.now() > deadline) throw new Error(`expected ${count} mails to ${address}, got ${mailsTo(address).length}`);
    await sleep(50);
  }
  return mailsTo(address);
}

interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
}

async function answer(res: Response): Promise<Answer> {
  return { status: res.status, headers: res.headers, text: await res.text() };
}

function legacy(base: string, email: string, businessId = env.businessId): Promise<Answer> {
  return fetch(`${base}/api/sys/users/sendOtp?email=${encodeURIComponent(email)}&businessId=${businessId}`).then(answer);
}

function stytchSend(base: string, email: string): Promise<Answer> {
  return fetch(`${base}/v1/otps/email/send`, {
    method: "POST",
    headers: { authorization: env.project.authorization, "content-type": "application/json" },
    body: JSON.stringify({ email }),
  }).then(answer);
}

/** Every header but those that differ between any two answers. */
function headersOf(a: Answer): [string, string][] {
  // date and x-request-id differ between any two answers; neither depends on the address.
  return [...a.headers.entries()].filter(([k]) => k !== "date" && k !== "x-request-id").sort(([x], [y]) => x.localeCompare(y));
}

function countBy<T>(xs: readonly T[], key: (x: T) => number): Record<number, number> {
  const out: Record<number, number> = {};
  for (const x of xs) out[key(x)] = (out[key(x)] ?? 0) + 1;
  return out;
}

function expectRetryAfter(a: Answer) {
  const value = a.headers.get("retry-after");
  expect(value, `Retry-After on ${a.status} ${a.text}`).toMatch(/^\d+$/);
  // Per-email limit: 3 at once, then one every 20 s.
  expect(Number(value)).toBeGreaterThanOrEqual(1);
  expect(Number(value)).toBeLessThanOrEqual(20);
}

const LEGACY_SUCCESS = '{"WasSuccessful":true,"Value":null,"Status":200,"Message":null,"Errors":null}';

describe("per-email limit across two instances under concurrency", () => {
  it("Stytch send: 100 concurrent sends to one user → exactly 3 × 200, 97 × 429, 3 mails", async () => {
    const credentials = await env.tenants.projectCredentials(env.project.projectId);
    expect(credentials).toBeDefined();
    const email = `burst-${randomUUID()}@example.com`;
    const userId = newId("user", false);
    const emailId = newId("email", false);
    await new PgAdminStore(env.app.db).addUser(credentials!.tenant.id, { userId, emailId, address: email });

    // Authenticate once on each instance first (a call that fails after
    // auth and charges no limit), so the burst below measures the limit,
    // not 100 cold scrypt verifications.
    for (const base of urls) {
      const warm = await fetch(`${base}/v1/otps/email/send`, {
        method: "POST",
        headers: { authorization: env.project.authorization, "content-type": "application/json" },
        body: JSON.stringify({ email, login_template_id: "nope" }),
      });
      expect(warm.status).toBe(400);
    }

    const answers = await Promise.all(Array.from({ length: 100 }, (_, i) => stytchSend(urls[i % 2]!, email)));

    expect(countBy(answers, (a) => a.status)).toEqual({ 200: 3, 429: 97 });
    // The limit is shared: each instance refused some of its own 50.
    for (const n of [0, 1]) {
      expect(answers.filter((a, i) => i % 2 === n && a.status === 429).length).toBeGreaterThanOrEqual(47);
    }
    for (const a of answers) {
      expect(a.headers.get("content-type")).toMatch(/^application\/json/);
      const body = JSON.parse(a.text);
      if (a.status === 200) {
        expect(body).toMatchObject({ user_id: userId, email_id: emailId, status_code: 200 });
      } else {
        expect(Object.keys(body).sort()).toEqual(["error_message", "error_type", "error_url", "request_id", "status_code"]);
        expect(body).toMatchObject({ status_code: 429, error_type: "too_many_requests" });
        expect(body.request_id).toMatch(/^request-id-test-/);
        expectRetryAfter(a);
      }
    }

    expect(await settledOutbox(env.app.db, email)).toBe(3);
    expect(mailsTo(email)).toHaveLength(3);
  });

  it("legacy sendOtp: 100 concurrent GETs for the customer → 3 × 200, 97 × 429 with Retry-After, exactly 3 mails", async () => {
    const answers = await Promise.all(Array.from({ length: 100 }, (_, i) => legacy(urls[i % 2]!, env.customer)));

    expect(countBy(answers, (a) => a.status)).toEqual({ 200: 3, 429: 97 });
    for (const n of [0, 1]) {
      expect(answers.filter((a, i) => i % 2 === n && a.status === 429).length).toBeGreaterThanOrEqual(47);
    }
    for (const a of answers) {
      expect(a.headers.get("content-type")).toMatch(/^application\/json/);
      if (a.status === 200) {
        expect(a.text).toBe(LEGACY_SUCCESS);
      } else {
        const body = JSON.parse(a.text);
        expect(Object.keys(body)).toEqual(["WasSuccessful", "Value", "Status", "Message", "Errors"]);
        expect(body).toMatchObject({ WasSuccessful: false, Value: null, Status: 429, Errors: null });
        expect(body.Message).toMatch(/\S/);
        expectRetryAfter(a);
      }
    }

    expect(await settledOutbox(env.app.db, env.customer)).toBe(3);
    expect(mailsTo(env.customer)).toHaveLength(3);
  });
});

describe("legacy sendOtp does not reveal whether an email is a customer", () => {
  let known: string;
  let unknown: string;
  beforeAll(async () => {
    // A fresh customer, so the limits charged above do not apply to it.
    const business = await env.tenants.business(String(env.businessId));
    known = `known-${randomUUID()}@example.com`;
    unknown = `stranger-${randomUUID()}@example.com`;
    await addTestUser(env.app.db, business!.id, known);
  });

  it("answers an unknown address byte for byte as it answers a customer, and mails only the customer", async () => {
    const forKnown = await legacy(env.url, known);
    const forUnknown = await legacy(env.url, unknown);

    expect(forKnown.status).toBe(200);
    expect(forKnown.text).toBe(LEGACY_SUCCESS);
    expect(forUnknown.status).toBe(forKnown.status);
    expect(forUnknown.text).toBe(forKnown.text);
    expect(forUnknown.headers.get("content-type")).toBe(forKnown.headers.get("content-type"));
    expect(headersOf(forUnknown)).toEqual(headersOf(forKnown));

    const [mail] = await waitForMailsTo(known, 1);
    expect(mail!.to).toBe(known);
    // Nothing was queued for the stranger, so nothing can arrive later.
    expect(await settledOutbox(env.app.db, unknown)).toBe(0);
    expect(mailsTo(unknown)).toEqual([]);
    expect(env.smtp.mails.some((m) => m.raw.includes(unknown))).toBe(false);

    // Nor does the stranger leave a trace a later request could detect.
    const client = new pg.Client({ connectionString: env.database.url });
    await client.connect();
    try {
      const emails = await client.query("SELECT 1 FROM emails WHERE address = $1", [unknown]);
      expect(emails.rowCount).toBe(0);
      const outbox = await client.query("SELECT 1 FROM outbox WHERE recipient = $1", [unknown]);
      expect(outbox.rowCount).toBe(0);
    } finally {
      await client.end();
    }
  });

  it("limits an unknown address exactly like a customer: the 4th immediate request is 429, identically", async () => {
    // Addresses of this test's own: three requests each are allowed, then 429.
    const business = await env.tenants.business(String(env.businessId));
    const known = `known-${randomUUID()}@example.com`;
    const unknown = `stranger-${randomUUID()}@example.com`;
    await addTestUser(env.app.db, business!.id, known);
    for (let n = 1; n <= 3; n++) {
      const forKnown = await legacy(env.url, known);
      const forUnknown = await legacy(env.url, unknown);
      expect(forKnown.status, `request ${n} for the customer`).toBe(200);
      expect(forUnknown.status, `request ${n} for the stranger`).toBe(200);
      expect(forUnknown.text).toBe(forKnown.text);
    }
    const fourthKnown = await legacy(urls[1], known);
    const fourthUnknown = await legacy(urls[1], unknown);

    expect(fourthKnown.status).toBe(429);
    expect(fourthUnknown.status).toBe(429);
    expect(fourthUnknown.text).toBe(fourthKnown.text);
    expect(fourthUnknown.headers.get("content-type")).toBe(fourthKnown.headers.get("content-type"));
    expect(JSON.parse(fourthKnown.text)).toMatchObject({ WasSuccessful: false, Value: null, Status: 429, Errors: null });
    expectRetryAfter(fourthKnown);
    expectRetryAfter(fourthUnknown);
    // Header names match (values such as Retry-After may differ by the second boundary).
    expect(headersOf(fourthUnknown).map(([k]) => k)).toEqual(headersOf(fourthKnown).map(([k]) => k));

    // The customer got exactly 3 codes; the stranger none.
    expect(await settledOutbox(env.app.db, known)).toBe(3);
    expect(await settledOutbox(env.app.db, unknown)).toBe(0);
    expect(mailsTo(known)).toHaveLength(3);
    expect(mailsTo(unknown)).toEqual([]);
  });
});

describe("one mailbox under many spellings spends one budget", () => {
  it("name+1@ … name+4@ and Gmail's dotted and googlemail spellings: 3 codes, then 429, whichever spelling", async () => {
    const name = `bomb${randomUUID().slice(0, 8)}`;
    const spellings = [`${name}+1@example.com`, `${name}+2@example.com`, `${name.toUpperCase()}+3@Example.com`, `${name}+4@example.com`];
    const answers: Answer[] = [];
    for (const [i, email] of spellings.entries()) {
      answers.push(
        await fetch(`${urls[i % 2]}/v1/otps/email/login_or_create`, {
          method: "POST",
          headers: { authorization: env.project.authorization, "content-type": "application/json" },
          body: JSON.stringify({ email }),
        }).then(answer),
      );
    }
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 429]);
    expect(JSON.parse(answers[3]!.text)).toMatchObject({ status_code: 429, error_type: "too_many_requests" });
    for (const email of spellings.slice(0, 3)) await waitForMailsTo(email.toLowerCase(), 1);
    expect(mailsTo(spellings[3]!)).toEqual([]);

    // The legacy route spends the same kind of budget by mailbox: Gmail's spellings are one.
    const gmail = `${name}.x`;
    const legacySpellings = [`${gmail}@gmail.com`, `${gmail.replace(".", "")}@gmail.com`, `${gmail}+a@googlemail.com`, `${gmail.replace(".", "..")}+b@gmail.com`];
    const legacyAnswers = [];
    for (const email of legacySpellings) legacyAnswers.push(await legacy(env.url, email));
    expect(legacyAnswers.map((a) => a.status)).toEqual([200, 200, 200, 429]);
  });
});
