// Development conveniences never reach production by accident: the dev
// mailbox (codes on a public page and in the log) exists only on the
// embedded database or when UNSAFE_DEV_MAILBOX asks for it, and even then
// an instance shows only mail sent through itself, never what other
// instances on the same database queued. Real Postgres, real SMTP.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config.js";
import type { App } from "../../src/server.js";
import { PEPPER, startTestEnv, type TestEnv } from "../support/app.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("DATABASE_URL without SMTP_URL", () => {
  it("refuses to start, naming SMTP_URL", () => {
    const load = () => loadConfig({ DATABASE_URL: "postgres://db.example/otp", OTP_PEPPER: PEPPER });
    expect(load).toThrow(ConfigError);
    expect(load).toThrow(/SMTP_URL is required when DATABASE_URL is set/);
  });

  it("starts with UNSAFE_DEV_MAILBOX=true, and only then has a dev mailbox", () => {
    const base = { DATABASE_URL: "postgres://db.example/otp", OTP_PEPPER: PEPPER };
    expect(loadConfig({ ...base, UNSAFE_DEV_MAILBOX: "true" }).devMailbox).toBe(true);
    expect(loadConfig({ ...base, SMTP_URL: "smtp://mail.example:587" }).devMailbox).toBe(false);
    expect(() => loadConfig({ ...base, SMTP_URL: "smtp://mail.example:587", UNSAFE_DEV_MAILBOX: "true" })).toThrow(/UNSAFE_DEV_MAILBOX/);
  });

  it("keeps the dev mailbox of the embedded default", () => {
    expect(loadConfig({}).devMailbox).toBe(true);
  });
});

describe("a dev-mailbox instance on a database other instances share", () => {
  let env: TestEnv;
  let dev: { app: App; url: string };
  beforeAll(async () => {
    env = await startTestEnv();
    dev = await env.startInstance({ SMTP_URL: "", UNSAFE_DEV_MAILBOX: "true" });
  });
  afterAll(async () => {
    await env?.close();
  });

  const legacySend = (base: string, email: string) =>
    fetch(`${base}/api/sys/users/sendOtp?email=${encodeURIComponent(email)}&businessId=${env.businessId}`);
  const devMails = async () => (await (await fetch(`${dev.url}/dev/mailbox`)).json()) as { to: string; subject: string }[];

  it("never takes mail another instance queued into its public mailbox", async () => {
    // The SMTP instance accepts the send but is not delivering (as if busy
    // or stopped), so the mail waits in the shared outbox.
    await env.app.worker.stop(0);
    expect((await legacySend(env.url, env.customer)).status).toBe(200);
    // Several of the dev instance's polling rounds (OUTBOX_POLL_MS=200).
    dev.app.worker.wake();
    await sleep(1_500);
    await dev.app.worker.idle();
    expect((await devMails()).filter((m) => m.to === env.customer)).toEqual([]);
    const { rows } = await env.app.db.query("SELECT status FROM outbox WHERE recipient = $1", [env.customer]);
    expect(rows.map((r) => r.status)).toEqual(["pending"]);

    // Nothing accepted is lost: an SMTP instance delivers it for real.
    const smtpInstance = await env.startInstance();
    const mails = await env.smtp.waitFor(1);
    expect(mails[0]!.to).toBe(env.customer);
    // It stops delivering again, so that the next test's mail can only be
    // delivered by the dev instance: an SMTP instance claims any due row,
    // the dev instance's own too, and on a busy machine its poll sometimes
    // came before the dev instance's claim (the mail went out by SMTP and
    // never reached the dev mailbox).
    await smtpInstance.app.worker.stop(0);
    await smtpInstance.app.worker.idle();
  });

  it("shows the mail sent through itself", async () => {
    const address = "dev-instance-user@example.com";
    const res = await fetch(`${dev.url}/v1/otps/email/login_or_create`, {
      method: "POST",
      headers: { authorization: env.project.authorization, "content-type": "application/json" },
      body: JSON.stringify({ email: address }),
    });
    expect(res.status).toBe(200);
    // Generous: the whole suite runs four forks on two CPUs, Chromium among them.
    const deadline = Date.now() + 15_000;
    while ((await devMails()).every((m) => m.to !== address)) {
      expect(Date.now()).toBeLessThan(deadline);
      await sleep(50);
    }
  });

  it("tells only its own sign-in page that a dev mailbox exists", async () => {
    const flag = async (base: string) => ((await (await fetch(`${base}/signin/config.json`)).json()) as { dev_mailbox: boolean }).dev_mailbox;
    expect(await flag(dev.url)).toBe(true);
    expect(await flag(env.url)).toBe(false);
    expect((await fetch(`${env.url}/dev/mailbox`)).status).toBe(404);
  });
});
