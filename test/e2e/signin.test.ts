// The sign-in page in real headless Chromium against a real server: the
// whole sign-in with the code read from the SMTP server, the rate-limit and
// wrong-code messages, and CORS from pages on other origins.
// With UPDATE_SCREENSHOTS=1 each step is saved to docs/signin/.
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestEnv, type TestEnv } from "../support/app.js";
import { codeIn } from "../support/smtp.js";

const CHROMIUM = "/usr/bin/chromium";
const SHOTS = process.env.UPDATE_SCREENSHOTS === "1" ? new URL("../../docs/signin/", import.meta.url) : undefined;

/** A page on another origin that calls the service's SendOtp from the browser. */
function startOtherOrigin(): Promise<{ origin: string; close: () => Promise<void> }> {
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/html" });
    res.end("<!doctype html><title>other origin</title><p>elsewhere</p>");
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      resolve({ origin: `http://127.0.0.1:${port}`, close: () => new Promise((r) => server.close(() => r())) });
    }),
  );
}

describe.skipIf(!existsSync(CHROMIUM))("sign-in page in Chromium", () => {
  let env: TestEnv;
  let browser: Browser;
  let allowed: Awaited<ReturnType<typeof startOtherOrigin>>;
  let refused: Awaited<ReturnType<typeof startOtherOrigin>>;

  beforeAll(async () => {
    allowed = await startOtherOrigin();
    refused = await startOtherOrigin();
    // Business 7, as the demo data (and the screenshots) have it.
    env = await startTestEnv({ ALLOWED_ORIGINS: allowed.origin }, { businessId: 7 });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
    });
    if (SHOTS) await mkdir(SHOTS, { recursive: true });
  });

  afterAll(async () => {
    await browser?.close();
    await env?.close();
    await allowed?.close();
    await refused?.close();
  });

  async function openPage(): Promise<Page> {
    const page = await browser.newPage({ viewport: { width: 390, height: 844 } });
    await page.goto(`${env.url}/signin`);
    return page;
  }

  async function shot(page: Page, name: string): Promise<void> {
    if (SHOTS) await page.screenshot({ path: new URL(name, SHOTS).pathname, fullPage: true });
  }

  it("signs a customer in: email, code from the mail, token shown", async () => {
    const page = await openPage();
    await shot(page, "1-start.png");
    await page.getByLabel("Email address").fill(env.customer);
    await page.getByLabel("Business number").fill(String(env.businessId));
    // Counted before the click: the mail may arrive before the page says it is on its way.
    const before = env.smtp.mails.length;
    await page.getByRole("button", { name: "Email me a code" }).click();
    await expect.poll(() => page.getByRole("status").textContent()).toContain("a code is on its way");
    await shot(page, "2-code-sent.png");

    const mail = (await env.smtp.waitFor(before + 1)).at(-1)!;
    await page.getByLabel("6-digit code").fill(codeIn(mail));
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect.poll(() => page.getByRole("heading", { name: "You're signed in" }).isVisible()).toBe(true);
    expect(await page.locator("#who").textContent()).toBe(`${env.customer}, business ${env.businessId}`);
    expect(await page.locator("#token").textContent()).toMatch(/^eyJ[\w-]+\.[\w-]+\.[\w-]+$/);
    await shot(page, "3-signed-in.png");
    await page.close();
  });

  it("says a wrong code is wrong, on the code field", async () => {
    const page = await openPage();
    await page.getByLabel("Email address").fill(env.customer);
    await page.getByLabel("Business number").fill(String(env.businessId));
    await page.getByRole("button", { name: "Email me a code" }).click();
    await page.getByLabel("6-digit code").waitFor();
    await page.getByLabel("6-digit code").fill("000000");
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect.poll(() => page.getByRole("alert").textContent()).toContain("That code is wrong, expired or already used");
    expect(await page.getByLabel("6-digit code").getAttribute("aria-invalid")).toBe("true");
    await shot(page, "4-wrong-code.png");
    await page.close();
  });

  it("says how long to wait when rate-limited", async () => {
    const page = await openPage();
    const address = `limited-${Date.now()}@example.com`;
    for (let i = 0; i < 4; i++) {
      await page.getByLabel("Email address").fill(address);
      await page.getByLabel("Business number").fill(String(env.businessId));
      await page.getByRole("button", { name: "Email me a code" }).click();
      if (i < 3) {
        await page.getByRole("button", { name: "Use a different email" }).waitFor();
        await page.getByRole("button", { name: "Use a different email" }).click();
      }
    }
    await expect.poll(() => page.getByRole("alert").textContent()).toMatch(/Too many attempts\. Try again in \d+ seconds\./);
    await shot(page, "5-rate-limited.png");
    await page.close();
  });

  it("says which field is wrong for a malformed email, and works by keyboard", async () => {
    const page = await openPage();
    await page.getByLabel("Email address").focus();
    await page.keyboard.type("not-an-email");
    await page.keyboard.press("Tab");
    await page.keyboard.type(String(env.businessId));
    await page.keyboard.press("Enter");
    await expect.poll(() => page.getByRole("alert").textContent()).toBe("Enter a valid email address.");
    expect(await page.getByLabel("Email address").getAttribute("aria-invalid")).toBe("true");
    await page.close();
  });

  async function callFrom(origin: string): Promise<string> {
    const page = await browser.newPage();
    await page.goto(origin);
    const result = await page.evaluate(
      async ({ url, businessId }) => {
        try {
          const res = await fetch(`${url}/otp.v1.OtpService/SendOtp`, {
            method: "POST",
            headers: { "content-type": "application/json", "connect-protocol-version": "1" },
            body: JSON.stringify({ email: "cors@example.com", businessId: String(businessId) }),
          });
          return `status ${res.status}: ${await res.text()}`;
        } catch (err) {
          return `blocked: ${(err as Error).name}`;
        }
      },
      { url: env.url, businessId: env.businessId },
    );
    await page.close();
    return result;
  }

  it("lets an allowed origin call the service and refuses any other", async () => {
    expect(await callFrom(allowed.origin)).toBe('status 200: {"WasSuccessful":true,"Status":200}');
    expect(await callFrom(refused.origin)).toBe("blocked: TypeError");
  });
});
