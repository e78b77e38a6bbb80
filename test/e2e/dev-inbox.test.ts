// The dev mailbox's inbox page in real headless Chromium: newest first with
// recipient, subject and time; each mail's HTML part in a sandboxed frame
// where no script runs, beside its text part; the code copied with one
// click; the filter by recipient; new mail appearing by itself; the clear
// button; and the sign-in page's link to the recipient's mail.
// With UPDATE_SCREENSHOTS=1 the inbox is saved as docs/inbox.png.
import { existsSync } from "node:fs";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addTestUser, createTestBusiness } from "../support/app.js";
import { readDemoCredentials } from "../../src/storage/dev-state.js";
import { DEV_ADMIN_TOKEN, startDevService, type DevService } from "../support/dev-service.js";

const CHROMIUM = "/usr/bin/chromium";
const SHOT = process.env.UPDATE_SCREENSHOTS === "1" ? new URL("../../docs/inbox.png", import.meta.url).pathname : undefined;
const RUN = Date.now().toString(36);

describe.skipIf(!existsSync(CHROMIUM))("the dev inbox in Chromium", () => {
  let dev: DevService;
  let browser: Browser;
  let context: BrowserContext;
  let auth: string;
  const jane = "jane.doe@example.com";
  const sam = `sam-${RUN}@example.com`;

  async function legacySend(email: string): Promise<void> {
    expect((await fetch(`${dev.url}/api/sys/users/sendOtp?email=${encodeURIComponent(email)}&businessId=7`)).status).toBe(200);
    await dev.app.worker.idle();
  }

  async function stytchSend(email: string, body: Record<string, unknown> = {}): Promise<void> {
    const res = await fetch(`${dev.url}/v1/otps/email/login_or_create`, {
      method: "POST",
      headers: { authorization: auth, "content-type": "application/json" },
      body: JSON.stringify({ email, ...body }),
    });
    expect(res.status, await res.clone().text()).toBe(200);
    await dev.app.worker.idle();
  }

  /** Empties the mailbox: for a test that counts what it shows. */
  async function clearMailbox(): Promise<void> {
    expect((await fetch(`${dev.url}/dev/mailbox`, { method: "DELETE" })).status).toBe(204);
  }

  async function codes(): Promise<{ to: string; subject: string }[]> {
    return (await (await fetch(`${dev.url}/dev/mailbox`)).json()) as { to: string; subject: string }[];
  }

  beforeAll(async () => {
    dev = await startDevService();
    const demo = (await readDemoCredentials(dev.dataDir))!;
    auth = `Basic ${Buffer.from(`${demo.project_id}:${demo.secret}`).toString("base64")}`;
    // A template whose HTML tries to run a script: the frame must not let it.
    const template = await fetch(`${dev.url}/otp.v1.AdminService/SetTemplate`, {
      method: "POST",
      headers: { authorization: `Bearer ${DEV_ADMIN_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({
        projectId: demo.project_id,
        kind: "TEMPLATE_KIND_SIGNUP",
        name: "welcome",
        subject: "Welcome, your code is {{code}}",
        textBody: "Your code is {{code}}.",
        htmlBody: `<p id="code">{{code}}</p><script>document.getElementById("code").textContent = "script ran"</script>`,
      }),
    });
    expect(template.status, await template.clone().text()).toBe(200);
    await addTestUser(dev.app.db, await createTestBusiness(dev.app.db, 7, "Demo Studio"), `lee-${RUN}@example.com`);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
    });
    context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
    await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: new URL(dev.url).origin });
  });

  afterAll(async () => {
    await browser?.close();
    await dev?.close();
  });

  async function inbox(query = ""): Promise<Page> {
    const page = await context.newPage();
    await page.goto(`${dev.url}/dev/mailbox${query}`);
    return page;
  }

  it("lists the mails newest first, with recipient, subject, time, the HTML part in a frame and the text part", async () => {
    await clearMailbox();
    await legacySend(jane);
    await stytchSend(sam);
    const [newest, older] = await codes();
    const page = await inbox();
    const articles = page.getByRole("article");
    await expect.poll(() => articles.count()).toBe(2);
    const first = articles.nth(0);
    expect(await first.getByRole("heading", { level: 2 }).textContent()).toBe(newest!.subject);
    expect(await first.textContent()).toContain(sam);
    expect(await articles.nth(1).getByRole("heading", { level: 2 }).textContent()).toBe(older!.subject);
    expect(await articles.nth(1).textContent()).toContain(jane);
    expect(await first.locator("time").getAttribute("datetime")).toMatch(/^\d{4}-\d\d-\d\dT/);
    const code = /\d{6}/.exec(newest!.subject)![0];
    await expect.poll(() => page.frameLocator("iframe").first().getByText(code).count()).toBeGreaterThan(0);
    expect(await first.locator("pre").textContent()).toContain(code);
    // The page's own style applies (allowed by hash under the CSP).
    expect(await page.getByRole("button", { name: "Filter" }).evaluate((b) => getComputedStyle(b).backgroundColor)).toBe("rgb(36, 81, 179)");
    if (SHOT) await page.screenshot({ path: SHOT });
    await page.close();
  });

  it("runs no script of a mail: the frame is sandboxed", async () => {
    await stytchSend(`script-${RUN}@example.com`, { signup_template_id: "welcome" });
    const [newest] = await codes();
    const code = /\d{6}/.exec(newest!.subject)![0];
    const page = await inbox();
    const first = page.getByRole("article").first();
    expect(await first.locator("iframe").getAttribute("sandbox")).toBe("");
    // Rendered, and the template's script did not run.
    await expect.poll(() => page.frameLocator("iframe").first().locator("#code").textContent()).toBe(code);
    expect(await first.locator("pre").textContent()).toBe(`Your code is ${code}.`);
    await page.close();
  });

  it("copies the code with one click", async () => {
    await stytchSend(`copy-${RUN}@example.com`);
    const [newest] = await codes();
    const code = /\d{6}/.exec(newest!.subject)![0];
    const page = await inbox();
    await page.getByRole("button", { name: `Copy the code ${code}` }).click();
    await expect.poll(() => page.getByRole("article").first().getByRole("button", { name: /Copy the code/ }).textContent()).toBe("Copied");
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(code);
    await page.close();
  });

  it("filters by recipient, and shows new mail by itself", async () => {
    await legacySend(jane);
    const page = await inbox();
    await page.getByLabel("Recipient").fill(jane);
    await page.getByRole("button", { name: "Filter" }).click();
    await page.waitForURL(/\?to=/);
    expect(new URL(page.url()).searchParams.get("to")).toBe(jane);
    const recipients = await page.locator("article .meta b").allTextContents();
    expect(recipients.length).toBeGreaterThan(0);
    expect(new Set(recipients)).toEqual(new Set([jane]));

    const lee = `lee-${RUN}@example.com`;
    const other = await inbox(`?to=${encodeURIComponent(lee)}`);
    expect(await other.getByRole("status").textContent()).toContain(`0 mails to ${lee}`);
    await legacySend(lee);
    await expect.poll(() => other.getByRole("article").count(), { timeout: 10_000 }).toBe(1);
    await page.close();
    await other.close();
  });

  it("clears the mailbox with its button", async () => {
    const page = await inbox();
    await page.getByRole("button", { name: "Clear the mailbox" }).click();
    await expect.poll(() => page.locator(".empty").textContent()).toContain("No mail yet.");
    expect(await codes()).toEqual([]);
    await page.close();
  });

  it("is linked from the sign-in page, opening on the address just used", async () => {
    await clearMailbox();
    const page = await context.newPage();
    await page.goto(`${dev.url}/signin`);
    await page.getByLabel("Email address").fill(jane);
    await page.getByLabel("Business number").fill("7");
    await page.getByRole("button", { name: "Email me a code" }).click();
    await expect.poll(() => page.getByRole("status").textContent()).toContain("a code is on its way");
    const link = page.getByRole("link", { name: "dev mailbox" });
    expect(await link.getAttribute("href")).toBe(`/dev/mailbox?to=${encodeURIComponent(jane)}`);
    const [opened] = await Promise.all([context.waitForEvent("page"), link.click()]);
    await opened.waitForLoadState();
    await expect.poll(() => opened.getByRole("article").count(), { timeout: 10_000 }).toBe(1);
    expect(await opened.locator("article .meta b").textContent()).toBe(jane);
    await opened.close();
    await page.close();
  });
});
