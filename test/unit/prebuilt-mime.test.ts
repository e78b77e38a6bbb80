// MIME built once per template: a prebuilt message, with the code,
// recipient, Message-ID and date put in, is byte for byte what nodemailer's
// composer makes of the same mail (but for the multipart boundary, which
// nodemailer picks at random for each message).
import MailComposer from "nodemailer/lib/mail-composer/index.js";
import { describe, expect, it } from "vitest";
import { PrebuiltMime, type ComposableMail } from "../../src/mail/prebuilt-mime.js";
import { LOCALES } from "../../src/domain/locales.js";
import type { Branding } from "../../src/domain/outbox.js";
import { renderCustomMail, renderOtpMail } from "../../src/mail/templates.js";

const NO_BRANDING: Branding = { logoUrl: null, accentColor: null, supportUrl: null };
const DATE = new Date("2026-11-30T22:14:18Z");

function mail(code: string, to: string, content: { subject: string; text: string; html: string }, fromName = "Acme"): ComposableMail {
  return {
    code,
    options: {
      from: { name: fromName, address: "no-reply@otp.example" },
      to,
      replyTo: undefined,
      ...content,
      messageId: `<${code}-${to}@otp.example>`,
      textEncoding: "quoted-printable",
      headers: { "Auto-Submitted": "auto-generated" },
    },
  };
}

async function composed(m: ComposableMail): Promise<string> {
  const raw = await new Promise<Buffer>((resolve, reject) =>
    new MailComposer({ ...m.options, date: DATE }).compile().build((err, b) => (err ? reject(err) : resolve(b))),
  );
  return raw.toString("latin1");
}

const sameBoundary = (s: string) => s.replace(/--_NmP-[0-9a-f]+-Part_\d+/g, "--BOUNDARY");

describe("prebuilt MIME", () => {
  it("equals the composer's message for every locale and template, one build serving many codes and recipients", async () => {
    const prebuilt = new PrebuiltMime();
    let prebuiltCount = 0;
    for (const tenantName of ["Acme", "Ñandú Café"]) {
      for (const locale of LOCALES) {
        for (const template of ["login", "signup"] as const) {
          for (const [code, to] of [["123456", "jane.doe@example.com"], ["000042", "a+tag@sub.example.org"], ["987654", "x@y.io"]] as const) {
            const content = renderOtpMail(locale, template, { code, minutes: 10, tenantName, email: to, branding: NO_BRANDING });
            const m = mail(code, to, content, tenantName);
            const fast = await prebuilt.render(m, DATE);
            // An encoded subject may be split inside the code: that message goes through the composer.
            if (tenantName === "Acme") expect(fast, `${locale} ${template} ${code}`).toBeDefined();
            if (fast) {
              prebuiltCount++;
              expect(sameBoundary(fast.toString("latin1"))).toBe(sameBoundary(await composed(m)));
            }
          }
        }
      }
    }
    expect(prebuiltCount).toBeGreaterThan(24);
  });

  it("handles branding, a custom template, and a code that also appears in the tenant's name", async () => {
    const prebuilt = new PrebuiltMime();
    const branding = { logoUrl: "https://cdn.example/logo.png", accentColor: "#abc", supportUrl: "https://help.example" };
    const cases = [
      renderOtpMail("en", "login", { code: "314159", minutes: 1, tenantName: "Shop 314159", email: "j@e.com", branding }),
      renderCustomMail(
        { subject: "Code {{code}} for {{tenant_name}}", text: "Hi {{email}}, {{code}} ({{expires_in_minutes}} min)", html: "<p>{{code}}</p><p>{{email}}</p>" },
        { code: "271828", minutes: 5, tenantName: "Acme", email: "j@e.com", branding },
      ),
    ];
    const codes = ["314159", "271828"];
    for (const [i, content] of cases.entries()) {
      const m = mail(codes[i]!, "j@e.com", content);
      const fast = await prebuilt.render(m, DATE);
      expect(fast).toBeDefined();
      expect(sameBoundary(fast!.toString("latin1"))).toBe(sameBoundary(await composed(m)));
    }
  });

  it("finds a template's prebuilt message again for each new code, and tells apart texts that differ only where a code could be", async () => {
    const prebuilt = new PrebuiltMime();
    const facts = (code: string, tenantName: string) => ({ code, minutes: 10, tenantName, email: "j@e.com", branding: NO_BRANDING });
    // The first mail's code is also in the tenant's name; the next ones' are not.
    for (const [code, tenantName] of [["111111", "Shop 111111"], ["222222", "Shop 111111"], ["111111", "Shop 222222"], ["333333", "Shop 222222"], ["111111", "Shop 111111"]] as const) {
      const m = mail(code, "j@e.com", renderOtpMail("en", "login", facts(code, tenantName)), tenantName);
      const fast = await prebuilt.render(m, DATE);
      expect(fast, `${code} ${tenantName}`).toBeDefined();
      expect(sameBoundary(fast!.toString("latin1"))).toBe(sameBoundary(await composed(m)));
    }
  });

  it("leaves to the composer what it cannot prebuild exactly", async () => {
    const prebuilt = new PrebuiltMime();
    const content = renderOtpMail("en", "login", { code: "123456", minutes: 10, tenantName: "Acme", email: "x", branding: NO_BRANDING });
    // A recipient nodemailer would encode or fold.
    expect(await prebuilt.render(mail("123456", "jöhn@example.com", content), DATE)).toBeUndefined();
    expect(await prebuilt.render(mail("123456", `${"a".repeat(70)}@example.com`, content), DATE)).toBeUndefined();
    // A code of another length or shape.
    expect(await prebuilt.render(mail("1234567", "j@e.com", { ...content, text: "1234567" }), DATE)).toBeUndefined();
    // Text that holds the code's stand-in itself: the code must not land there.
    const standIn = { ...content, text: `${content.text}\nQJXZKV\n` };
    expect(await prebuilt.render(mail("123456", "j@e.com", standIn), DATE)).toBeUndefined();
    // A body line that looks like a header the prebuilt message fills in.
    const tricky = { ...content, text: `${content.text}\nTo: someone@else.example\n` };
    expect(await prebuilt.render(mail("123456", "j@e.com", tricky), DATE)).toBeUndefined();
  });
});
