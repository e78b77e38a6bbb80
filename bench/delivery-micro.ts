// Delivery on its own: the service's SMTP mailer (src/mail/mailer.ts) sends
// passcode mails, rendered as the outbox worker renders them, to the bench's
// SMTP sink running in a child process, so the CPU this process spends per
// mail is the sender's alone. Run: `npx tsx bench/delivery-micro.ts`
// (DELIVERY_MAILS, DELIVERY_CONNECTIONS, DELIVERY_ROUNDS to change the size).
import { fork } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { createSmtpMailer } from "../src/mail/mailer.js";
import { renderOtpMail } from "../src/mail/templates.js";
import { startSmtpSink } from "./smtp-sink.js";

if (process.argv[2] === "sink") {
  const sink = await startSmtpSink();
  process.send?.({ url: sink.url });
  process.on("message", () => process.send?.({ count: sink.count(), connections: sink.connections() }));
} else {
  const mails = Number(process.env.DELIVERY_MAILS ?? 20_000);
  const connections = Number(process.env.DELIVERY_CONNECTIONS ?? 32);
  const rounds = Number(process.env.DELIVERY_ROUNDS ?? 3);
  const child = fork(fileURLToPath(import.meta.url), ["sink"], { execArgv: ["--import", "tsx"] });
  const [{ url }] = (await once(child, "message")) as [{ url: string }];
  const mailer = createSmtpMailer(url, connections);
  const mail = (n: number) => {
    const code = String(100_000 + (n % 900_000));
    const content = renderOtpMail("en", "login", { code, minutes: 2, tenantName: "Acme", email: `m${n}@bench.example`, branding: { logoUrl: null, accentColor: null, supportUrl: null } });
    return { ...content, from: { name: "Acme", address: "no-reply@otp.localhost" }, to: `m${n}@bench.example`, messageId: `<m${n}@otp.localhost>`, code };
  };
  let sent = 0;
  const round = async (count: number) => {
    let next = 0;
    const worker = async () => {
      while (next < count) {
        const n = sent + next++;
        await mailer.send(mail(n));
      }
    };
    const cpu = process.cpuUsage();
    const started = performance.now();
    await Promise.all(Array.from({ length: connections }, worker));
    const used = process.cpuUsage(cpu);
    const seconds = (performance.now() - started) / 1000;
    sent += count;
    return { perMailUs: (used.user + used.system) / count, mailsPerSecond: count / seconds };
  };
  await round(Math.min(2_000, mails)); // warm-up: JIT, sessions, the prebuilt message
  const results = [];
  for (let i = 0; i < rounds; i++) results.push(await round(mails));
  child.send("count");
  const [{ count, connections: opened }] = (await once(child, "message")) as [{ count: number; connections: number }];
  mailer.close();
  child.kill();
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const us = median(results.map((r) => r.perMailUs));
  const rate = median(results.map((r) => r.mailsPerSecond));
  console.log(`delivery mails=${mails} connections=${connections} rounds=${rounds} sender_cpu_us_per_mail=${us.toFixed(1)} mails_per_s=${rate.toFixed(0)} sink_received=${count} smtp_sessions=${opened}`);
  for (const r of results) console.log(`  round: ${r.perMailUs.toFixed(1)} µs/mail, ${r.mailsPerSecond.toFixed(0)} mails/s`);
}
