// The two documented REST contracts, end to end: real Postgres, real SMTP.
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mailbox } from "../support/answers.js";
import { startTestEnv, type TestEnv } from "../support/app.js";
import { codeIn } from "../support/smtp.js";

let env: TestEnv;
beforeAll(async () => {
  env = await startTestEnv();
});
afterAll(async () => {
  await env?.close();
});

const SUCCESS = '{"WasSuccessful":true,"Value":null,"Status":200,"Message":null,"Errors":null}';

function legacy(query: string) {
  return fetch(`${env.url}/api/sys/users/sendOtp?${query}`);
}

const { mailsTo, waitForMailTo } = mailbox(() => env.smtp);

function stytch(path: string, body: unknown, authorization = env.project.authorization) {
  return fetch(`${env.url}${path}`, {
    method: "POST",
    headers: { authorization, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

describe("legacy GET /api/sys/users/sendOtp", () => {
  it("answers the exact success envelope and mails the customer a code", async () => {
    const before = mailsTo(env.customer).length;
    const res = await legacy(`email=${encodeURIComponent(env.customer)}&businessId=${env.businessId}`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(await res.text()).toBe(SUCCESS);
    const mail = await waitForMailTo(env.customer, before + 1);
    expect(mail!.to).toBe(env.customer);
    expect(mail!.subject).toContain("Harbour Yoga");
    expect(mail!.html).toContain(codeIn(mail!));
    expect(mail!.text).toMatch(/expires in 10 minutes/);
  });

  it("keeps the code only as a hash: it is nowhere in the database in clear once delivered", async () => {
    const before = env.smtp.mails.length;
    expect((await legacy(`email=${encodeURIComponent(env.customer)}&businessId=${env.businessId}`)).status).toBe(200);
    const code = codeIn((await env.smtp.waitFor(before + 1))[before]!);
    const client = new pg.Client({ connectionString: env.database.url });
    await client.connect();
    try {
      // The row is marked sent (and its encrypted code wiped) just after SMTP accepts the mail.
      await expect
        .poll(async () => (await client.query("SELECT count(*)::int AS n FROM outbox WHERE payload IS NOT NULL")).rows[0].n, { timeout: 5_000 })
        .toBe(0);
      for (const table of ["otp_codes", "outbox", "emails", "rate_limits", "users", "tenants"]) {
        const { rows } = await client.query(`SELECT t::text AS row FROM ${table} t`);
        for (const { row } of rows) expect(row).not.toContain(code);
      }
    } finally {
      await client.end();
    }
  });
});

describe("Stytch POST /v1/otps/email/*", () => {
  it("login_or_create creates the user, then send reaches the same email_id", async () => {
    const email = `new-${Date.now()}@example.com`;
    const created = await stytch("/v1/otps/email/login_or_create", { email });
    expect(created.status).toBe(200);
    const body = await created.json();
    expect(Object.keys(body).sort()).toEqual(["email_id", "request_id", "status_code", "user_created", "user_id"]);
    expect(body).toMatchObject({ status_code: 200, user_created: true });
    expect(body.user_id).toMatch(/^user-test-[0-9a-f-]{36}$/);
    expect(body.email_id).toMatch(/^email-test-[0-9a-f-]{36}$/);
    expect(body.request_id).toMatch(/^request-id-test-[0-9a-f-]{36}$/);

    const sent = await stytch("/v1/otps/email/send", { email, expiration_minutes: 5 });
    expect(sent.status).toBe(200);
    const again = await sent.json();
    expect(Object.keys(again).sort()).toEqual(["email_id", "request_id", "status_code", "user_id"]);
    expect(again).toMatchObject({ user_id: body.user_id, email_id: body.email_id, status_code: 200 });
  });
});
