// A prebuilt mail on its own: PrebuiltMime (src/mail/prebuilt-mime.ts)
// finding a template's prebuilt message and writing each mail's bytes, for
// mails rendered as the outbox worker renders them, each with its own code
// and recipient. Prints the CPU per mail of each round; the first round
// includes building the message once. Run: `npx tsx bench/render-micro.ts`
// (RENDER_MAILS, RENDER_ROUNDS to change the size).
import { PrebuiltMime } from "../src/mail/prebuilt-mime.js";
import { renderOtpMail } from "../src/mail/templates.js";

const count = Number(process.env.RENDER_MAILS ?? 30_000);
const rounds = Number(process.env.RENDER_ROUNDS ?? 5);
const branding = { logoUrl: null, accentColor: null, supportUrl: null };
const mails = Array.from({ length: count }, (_, n) => {
  const code = String(100_000 + ((n * 7919) % 900_000));
  const to = `m${n}@bench.example`;
  const content = renderOtpMail("en", "login", { code, minutes: 2, tenantName: "Acme", email: to, branding });
  return {
    code,
    options: {
      from: { name: "Acme", address: "no-reply@otp.example" },
      to,
      replyTo: undefined,
      ...content,
      messageId: `<${n}@otp.example>`,
      textEncoding: "quoted-printable" as const,
      headers: { "Auto-Submitted": "auto-generated" },
    },
  };
});

const prebuilt = new PrebuiltMime();
const now = new Date();
for (let round = 1; round <= rounds; round++) {
  const before = process.cpuUsage();
  let bytes = 0;
  for (const mail of mails) {
    const raw = await prebuilt.render(mail, now);
    if (!raw) throw new Error("a bench mail was not prebuilt");
    bytes += raw.length;
  }
  const used = process.cpuUsage(before);
  console.log(`  round ${round}: ${((used.user + used.system) / count).toFixed(2)} µs/mail, ${Math.round(bytes / count)} bytes each`);
}
