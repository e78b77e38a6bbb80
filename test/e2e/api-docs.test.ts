// The /docs reference page in real headless Chromium: it renders every REST
// route from /openapi.json under its same-origin CSP, with no CSP violation,
// no failed load and no request to any other origin.
import { existsSync } from "node:fs";
import { chromium, type Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestEnv, type TestEnv } from "../support/app.js";

const CHROMIUM = "/usr/bin/chromium";

describe.skipIf(!existsSync(CHROMIUM))("/docs in Chromium", () => {
  let env: TestEnv;
  let browser: Browser;

  beforeAll(async () => {
    env = await startTestEnv();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
    });
  });

  afterAll(async () => {
    await browser?.close();
    await env?.close();
  });

  it("renders each REST route, loading only this origin", async () => {
    const page = await browser.newPage();
    const problems: string[] = [];
    const origins = new Set<string>();
    page.on("console", (m) => {
      if (m.type() === "error") problems.push(m.text());
    });
    page.on("pageerror", (e) => problems.push(e.message));
    page.on("request", (r) => origins.add(new URL(r.url()).origin));
    page.on("requestfailed", (r) => problems.push(`failed: ${r.url()}`));
    await page.goto(`${env.url}/docs`);
    await page.waitForSelector(".opblock", { timeout: 20_000 });
    const paths = await page.$$eval(".opblock-summary-path", (els) => els.map((e) => e.getAttribute("data-path") ?? e.textContent));
    expect(paths).toContain("/v1/otps/email/send");
    expect(paths).toContain("/api/sys/users/sendOtp");
    expect(paths.length).toBe(env.app.restRoutes.length);
    expect(problems).toEqual([]);
    expect([...origins].filter((o) => o !== env.url && o !== "null")).toEqual([]);
    await page.close();
  });
});
