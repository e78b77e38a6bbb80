// The dev mailbox: the same JSON as ever to scripts (now filterable with
// ?to=), an escaped inbox page under a strict CSP to browsers, a clear that
// only its own page (or a non-browser) may do, and, given a file, mails that
// survive a restart within a bounded size.
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DevMailbox, type OutgoingMail } from "../../src/mail/mailer.js";
import { addTestUser, createTestBusiness } from "../support/app.js";
import { startDevService, type DevService } from "../support/dev-service.js";

let dev: DevService;
let business: string;
const RUN = Date.now().toString(36);

beforeAll(async () => {
  dev = await startDevService();
  // A business name full of markup: it reaches subjects and bodies.
  business = await createTestBusiness(dev.app.db, 7, `Demo <script>alert(1)</script> & "Co"`);
});

afterAll(async () => {
  await dev?.close();
});

async function legacySend(email: string): Promise<void> {
  const res = await fetch(`${dev.url}/api/sys/users/sendOtp?email=${encodeURIComponent(email)}&businessId=7`);
  expect(res.status).toBe(200);
}

async function customer(email: string): Promise<void> {
  await addTestUser(dev.app.db, business, email);
}

describe("/dev/mailbox", () => {
  let n = 0;
  /** Two new customers, mailed one after the other: the test's own newest mails (another test may clear the mailbox). */
  async function twoMails(): Promise<[first: string, second: string]> {
    n += 1;
    const first = `inbox-a${n}-${RUN}@example.com`;
    const second = `inbox-b${n}-${RUN}@example.com`;
    await customer(first);
    await customer(second);
    await legacySend(first);
    await dev.app.worker.idle();
    await legacySend(second);
    await dev.app.worker.idle();
    return [first, second];
  }

  it("answers scripts with the same JSON as before: newest first, the same six fields, no code field", async () => {
    const [first, second] = await twoMails();
    const res = await fetch(`${dev.url}/dev/mailbox`);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(res.headers.get("vary")).toBe("Accept");
    const mails = (await res.json()) as Record<string, unknown>[];
    expect(mails.map((m) => m.to).slice(0, 2)).toEqual([second, first]);
    for (const m of mails) expect(Object.keys(m).sort()).toEqual(["created_at", "html", "id", "subject", "text", "to"]);
  });

  it("filters by recipient with ?to= (case-insensitive), for JSON and the page", async () => {
    const [first, second] = await twoMails();
    const only = (await (await fetch(`${dev.url}/dev/mailbox?to=${encodeURIComponent(first.toUpperCase())}`)).json()) as { to: string }[];
    expect(only.map((m) => m.to)).toEqual([first]);
    const none = (await (await fetch(`${dev.url}/dev/mailbox?to=nobody-${RUN}%40example.com`)).json()) as unknown[];
    expect(none).toEqual([]);
    const page = await (await fetch(`${dev.url}/dev/mailbox?to=${encodeURIComponent(first)}`, { headers: { accept: "text/html" } })).text();
    expect(page).toContain(first);
    expect(page).not.toContain(second);
  });

  it("answers browsers with an inbox page that escapes everything, under a strict CSP", async () => {
    await twoMails();
    const res = await fetch(`${dev.url}/dev/mailbox`, { headers: { accept: "text/html,application/xhtml+xml,*/*;q=0.8" } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
    const csp = res.headers.get("content-security-policy")!;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toMatch(/script-src 'sha256-[\w+/=]+'(;|$)/);
    expect(csp).toMatch(/style-src 'sha256-[\w+/=]+'(;|$)/);
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toMatch(/script-src[^;]*unsafe/);
    const page = await res.text();
    // The only script element is the page's own; the business's markup is text.
    expect(page.match(/<script/g)).toHaveLength(1);
    expect(page).toContain("Demo &lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;Co&quot;");
    // Each HTML part sits, escaped, in a sandboxed frame's srcdoc.
    const frames = [...page.matchAll(/<iframe sandbox srcdoc="([^"]*)"/g)].map((m) => m[1]!);
    expect(frames.length).toBeGreaterThanOrEqual(2);
    for (const srcdoc of frames) {
      expect(srcdoc).not.toMatch(/[<>]/);
      expect(srcdoc).toContain("&lt;");
    }
    // The code, ready to copy.
    const mails = (await (await fetch(`${dev.url}/dev/mailbox`)).json()) as { subject: string }[];
    const code = /\d{6}/.exec(mails[0]!.subject)![0];
    expect(page).toContain(`data-copy="${code}"`);
  });

  it("is cleared by its own page or a script, never from another site", async () => {
    const [first] = await twoMails();
    const foreign = await fetch(`${dev.url}/dev/mailbox/clear`, { method: "POST", headers: { origin: "http://evil.example" }, redirect: "manual" });
    expect(foreign.status).toBe(403);
    const crossSite = await fetch(`${dev.url}/dev/mailbox/clear`, { method: "POST", headers: { origin: "null", "sec-fetch-site": "cross-site" }, redirect: "manual" });
    expect(crossSite.status).toBe(403);
    expect(((await (await fetch(`${dev.url}/dev/mailbox`)).json()) as unknown[]).length).toBeGreaterThan(0);

    const own = await fetch(`${dev.url}/dev/mailbox/clear`, { method: "POST", headers: { origin: new URL(dev.url).origin }, redirect: "manual" });
    expect(own.status).toBe(303);
    expect(own.headers.get("location")).toBe("/dev/mailbox");
    expect(await (await fetch(`${dev.url}/dev/mailbox`)).json()).toEqual([]);

    await legacySend(first);
    await dev.app.worker.idle();
    expect((await fetch(`${dev.url}/dev/mailbox`, { method: "DELETE" })).status).toBe(204);
    expect(await (await fetch(`${dev.url}/dev/mailbox`)).json()).toEqual([]);
  });

  it("serves /favicon.ico", async () => {
    const res = await fetch(`${dev.url}/favicon.ico`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("image/x-icon");
    expect(Buffer.from(await res.arrayBuffer()).subarray(0, 4)).toEqual(Buffer.from([0, 0, 1, 0]));
  });
});

describe("DevMailbox kept in a file", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "otp-dev-mailbox-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const mail = (i: number, size = 10): OutgoingMail => ({
    from: { name: "Demo", address: "no-reply@otp.localhost" },
    to: `keep-${i}@example.com`,
    subject: `Your code: ${String(100000 + i)}`,
    text: `code ${100000 + i}`,
    html: `<p>${"x".repeat(size)}</p>`,
    messageId: `<m-${i}@otp.localhost>`,
    code: String(100000 + i),
  });

  it("survives a restart: a new mailbox on the same file lists the same mails, codes included, owner-only", async () => {
    const file = path.join(dir, "dev-mailbox.json");
    const before = new DevMailbox(pino({ level: "silent" }), { file });
    for (let i = 0; i < 3; i++) await before.send(mail(i));
    before.close();
    const after = new DevMailbox(pino({ level: "silent" }), { file });
    expect(after.list().map((m) => [m.to, m.code])).toEqual([2, 1, 0].map((i) => [`keep-${i}@example.com`, String(100000 + i)]));
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  });

  it("stays bounded: at most `capacity` mails and about `maxBytes`, the oldest dropped", async () => {
    const file = path.join(dir, "bounded.json");
    const box = new DevMailbox(pino({ level: "silent" }), { file, capacity: 5, maxBytes: 20_000 });
    for (let i = 0; i < 8; i++) await box.send(mail(i));
    expect(box.list().map((m) => m.to)).toEqual([7, 6, 5, 4, 3].map((i) => `keep-${i}@example.com`));
    for (let i = 8; i < 12; i++) await box.send(mail(i, 8_000));
    box.close();
    expect(box.list().length).toBeLessThan(5);
    expect(box.list()[0]!.to).toBe("keep-11@example.com");
    expect((await readFile(file, "utf8")).length).toBeLessThanOrEqual(20_000);
  });

  it("starts empty from a file that is not a mailbox", async () => {
    const file = path.join(dir, "broken.json");
    const { writeFile } = await import("node:fs/promises");
    await writeFile(file, "{not json");
    expect(new DevMailbox(pino({ level: "silent" }), { file }).list()).toEqual([]);
  });
});
