// The pooled SMTP mailer against a real SMTP server: it delivers, and a pool
// that met a refused connection delivers again once the server is back.
import { afterEach, describe, expect, it } from "vitest";
import { createSmtpMailer, type Mailer } from "../../src/mail/mailer.js";
import { startSmtp, type TestSmtp } from "../support/smtp.js";

const mail = (to: string) => ({
  from: { name: "Acme", address: "no-reply@otp.localhost" },
  to,
  subject: "Your code",
  text: "Your code is 123456.",
  html: "<p>Your code is <b>123456</b>.</p>",
  messageId: `<${to}@otp.localhost>`,
  code: "123456",
});

let mailer: Mailer | undefined;
let smtp: TestSmtp | undefined;
afterEach(async () => {
  mailer?.close();
  await smtp?.close();
  mailer = smtp = undefined;
});

describe("createSmtpMailer", () => {
  it("delivers many mails over a few pooled connections", async () => {
    smtp = await startSmtp();
    mailer = createSmtpMailer(smtp.url, 4);
    await Promise.all(Array.from({ length: 40 }, (_, i) => mailer!.send(mail(`pool-${i}@example.com`))));
    const got = await smtp.waitFor(40);
    expect(new Set(got.map((m) => m.to)).size).toBe(40);
    expect(got.find((m) => m.to === "pool-7@example.com")?.text).toContain("123456");
  });

  it("fails while the server refuses connections, then delivers through the same pool once it is back", async () => {
    const first = await startSmtp();
    const url = first.url;
    await first.close();
    mailer = createSmtpMailer(url, 2);
    for (let i = 0; i < 3; i++) await expect(mailer.send(mail(`down-${i}@example.com`))).rejects.toThrow();

    smtp = await startSmtp(Number(new URL(url).port));
    await Promise.all([0, 1, 2, 3].map((i) => mailer!.send(mail(`back-${i}@example.com`))));
    expect((await smtp.waitFor(4)).map((m) => m.to).sort()).toEqual([0, 1, 2, 3].map((i) => `back-${i}@example.com`));
  });
});
