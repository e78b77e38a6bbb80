// The legacy routes are public: an attacker must not learn from them
// whether an address is a business's customer. Attacked as an attacker
// would: the same requests for a customer and for a stranger, side by side,
// answers compared status, headers (all but per-call ones) and body, before
// and after enough wrong codes to lock the customer, and when the daily cap
// is reached. Real Postgres, real SMTP.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { emailFactory, mailbox } from "../support/answers.js";
import { addTestUser, settledOutbox, startTestEnv, type TestEnv } from "../support/app.js";
import { codeIn } from "../support/smtp.js";

let env: TestEnv;
beforeAll(async () => {
  // Twenty codes to one customer within the test: the short-term per-address
  // and per-IP limits are lifted (the daily cap, 20, is not). The guessing budget is
  // lifted too: it is keyed by client, so it answers alike for any address
  // (its own test is guessing-budget.test.ts), and here it would stop the
  // attack before the customer is locked. The answers' time floor is off:
  // timing is the fault suite's (enumeration-timing, exchange-timing), and
  // here each of ~280 requests in a row would wait for the 95th percentile
  // of a machine loaded by the rest of the suite (4.5 s alone, 72 s in it).
  env = await startTestEnv({ RATE_LIMIT_EMAIL_BURST: "1000", RATE_LIMIT_IP_BURST: "1000", GUESS_LIMIT_CLIENT_BURST: "100000", LEGACY_MIN_RESPONSE_MS: "0" });
});
afterAll(async () => {
  await env?.close();
});

const freshEmail = emailFactory();
const { mailsTo, waitForMailTo } = mailbox(() => env.smtp);

interface RawAnswer {
  readonly status: number;
  readonly headers: [string, string][];
  readonly text: string;
}

/** Status, every header but those that differ between any two calls, body. */
async function raw(res: Response): Promise<RawAnswer> {
  const headers = [...res.headers.entries()]
    .filter(([k]) => k !== "date" && k !== "x-request-id")
    .sort(([a], [b]) => a.localeCompare(b));
  return { status: res.status, headers, text: await res.text() };
}

const send = (email: string) =>
  fetch(`${env.url}/api/sys/users/sendOtp?email=${encodeURIComponent(email)}&businessId=${env.businessId}`).then(raw);

const exchange = (email: string, otp: string) =>
  fetch(`${env.url}/api/sys/users/exchange`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email, businessId: env.businessId, otp }),
  }).then(raw);

async function addCustomer(tag: string): Promise<string> {
  const business = await env.tenants.business(String(env.businessId));
  const address = freshEmail(tag);
  await addTestUser(env.app.db, business!.id, address);
  return address;
}

const wrong = (code: string, offset: number) => String((Number(code) + offset) % 1_000_000).padStart(6, "0");

async function lockedUntil(address: string): Promise<Date | null> {
  const { rows } = await env.app.db.query<{ locked_until: Date | null }>("SELECT locked_until FROM emails WHERE address = $1", [address]);
  return rows[0]!.locked_until;
}

describe("legacy exchange: a customer and a stranger are answered alike, however many codes fail", () => {
  it("120 wrong codes each, 20 sends each: every answer pair is identical, before and after the customer is locked", async () => {
    const customer = await addCustomer("lock-target");
    const stranger = freshEmail("stranger");
    const pairs: { n: number; customer: RawAnswer; stranger: RawAnswer }[] = [];
    let code = "";
    for (let n = 0; n < 120; n++) {
      if (n % 5 === 0 && n < 100) {
        // A fresh code every 5 tries, so every guess is at a live code
        // (which is what counts towards the lock). The stranger is "sent"
        // one too: the same answer, and no mail.
        const before = mailsTo(customer).length;
        const sends = [await send(customer), await send(stranger)];
        expect(sends[1]).toEqual(sends[0]);
        expect(sends[0]!.status).toBe(200);
        code = codeIn(await waitForMailTo(customer, before + 1));
      }
      const guess = wrong(code, (n % 5) + 1);
      const [c, s] = await Promise.all([exchange(customer, guess), exchange(stranger, guess)]);
      pairs.push({ n, customer: c, stranger: s });
    }

    // The attack did lock the customer (so the answers after it compare a
    // locked customer with a stranger) ...
    expect(await lockedUntil(customer)).not.toBeNull();
    // ... and yet no answer told them apart.
    for (const p of pairs) expect(p.stranger, `answer ${p.n + 1}`).toEqual(p.customer);
    expect(pairs[0]!.customer.status).toBe(400);
    expect(JSON.parse(pairs[119]!.customer.text)).toMatchObject({ WasSuccessful: false, Status: 400, Errors: { otp: expect.any(Array) } });

    // The locked customer's right code gets the stranger's answer too.
    const afterLock = await exchange(customer, code);
    expect(afterLock).toEqual(await exchange(stranger, code));
    expect(mailsTo(stranger)).toEqual([]);
  }, 60_000);

  it("100 wrong codes with no code sent do not lock a customer out (no cheap denial of service)", async () => {
    const customer = await addCustomer("no-dos");
    for (let n = 0; n < 100; n += 10) {
      const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => exchange(customer, String(n + i).padStart(6, "0"))));
      for (const a of answers) expect(a.status).toBe(400);
    }
    expect(await lockedUntil(customer)).toBeNull();
    // The customer then signs in as usual.
    const before = mailsTo(customer).length;
    expect((await send(customer)).status).toBe(200);
    const code = codeIn(await waitForMailTo(customer, before + 1));
    const ok = await exchange(customer, code);
    expect(ok.status, ok.text).toBe(200);
  }, 30_000);
});

describe("daily cap per address on sends, on the legacy route", () => {
  it("20 sends a day to an address: the 21st is 429 for a customer and a stranger alike; other addresses are not affected", async () => {
    const customer = await addCustomer("daily");
    const stranger = freshEmail("daily-stranger");
    for (let n = 1; n <= 20; n++) {
      const [c, s] = [await send(customer), await send(stranger)];
      expect(c.status, `send ${n}: ${c.text}`).toBe(200);
      expect(s).toEqual(c);
    }
    const [c, s] = [await send(customer), await send(stranger)];
    expect(c.status).toBe(429);
    expect(s.status).toBe(429);
    expect(s.text).toBe(c.text);
    expect(s.headers.map(([k]) => k)).toEqual(c.headers.map(([k]) => k));
    // The next send is allowed in about 72 minutes (a day / 20).
    const retryAfter = Number(new Map(c.headers).get("retry-after"));
    expect(retryAfter).toBeGreaterThan(60 * 60);
    expect(retryAfter).toBeLessThanOrEqual(72 * 60);

    expect(await settledOutbox(env.app.db, customer)).toBe(20);
    expect(mailsTo(customer)).toHaveLength(20);
    expect((await send(await addCustomer("daily-bystander"))).status).toBe(200);
  }, 30_000);
});
