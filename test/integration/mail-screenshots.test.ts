// The passcode mail's HTML as a person sees it: rendered by renderOtpMail for
// every locale × kind (with sample branding) in headless Chromium through
// playwright-core, at a phone's 375 px and a desktop's 800 px. The code must
// be visible and nothing may scroll sideways on the phone. With
// UPDATE_MAIL_SCREENSHOTS=1 it also writes docs/mail/<locale>.png (sign-up
// mail, 600 px wide, full page), the screenshots the README links to.
//
// Chromium comes from the system (/usr/bin/chromium: `apt-get install
// chromium`); without it this file is skipped. No request leaves the page:
// the logo is answered from memory and everything else is aborted.
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LOCALES } from "../../src/domain/locales.js";
import { renderOtpMail, type MailFacts } from "../../src/mail/templates.js";

const CHROMIUM = "/usr/bin/chromium";
const HAVE_CHROMIUM = existsSync(CHROMIUM);
const UPDATE = process.env.UPDATE_MAIL_SCREENSHOTS === "1";
const DOCS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../docs/mail");

if (!HAVE_CHROMIUM) {
  console.warn(`mail-screenshots: skipped, ${CHROMIUM} not found (install it with \`apt-get install chromium\`)`);
}

const CODE = "482916";
const LOGO_URL = "https://assets.harbour-yoga.example.com/logo.svg";
const FACTS: MailFacts = {
  code: CODE,
  minutes: 10,
  tenantName: "Harbour Yoga",
  email: "jane.doe@example.com",
  branding: {
    logoUrl: LOGO_URL,
    accentColor: "#0a7d5a",
    supportUrl: "https://harbour-yoga.example.com/help",
  },
};

/** A small wordmark, served for LOGO_URL without any network. */
const LOGO_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="160" height="40" viewBox="0 0 160 40">
<rect width="160" height="40" rx="8" fill="#0a7d5a"/>
<circle cx="20" cy="20" r="10" fill="#ffffff"/>
<text x="38" y="26" font-family="sans-serif" font-size="16" font-weight="bold" fill="#ffffff">Harbour Yoga</text>
</svg>`;

/** How each locale says the expiry, as it must appear on the page. */
const EXPIRY: Record<(typeof LOCALES)[number], string> = {
  en: "The code expires in 10 minutes.",
  es: "El código caduca en 10 minutos.",
  "pt-br": "O código expira em 10 minutos.",
  fr: "Le code expire dans 10 minutes.",
};

const CASES = LOCALES.flatMap((locale) => (["login", "signup"] as const).map((kind) => ({ locale, kind })));

describe.skipIf(!HAVE_CHROMIUM)(
  `passcode mail in headless Chromium${HAVE_CHROMIUM ? "" : ` (skipped: ${CHROMIUM} not found; install chromium)`}`,
  () => {
    let browser: Browser;
    const blocked: string[] = [];

    beforeAll(async () => {
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: [
          "--headless",
          "--no-sandbox",
          "--disable-gpu",
          "--disable-background-networking",
          "--disable-component-update",
          "--disable-sync",
          "--no-first-run",
        ],
      });
    }, 60_000);

    afterAll(async () => {
      await browser?.close();
    });

    const pages = new Map<string, Page>();

    /**
     * The page for a viewport `width` wide (and at least `height` tall),
     * showing `html`, with the logo served locally and every other request
     * refused. One page per viewport, reused: setContent replaces the
     * document each time.
     */
    async function show(html: string, width: number, height = 700): Promise<Page> {
      const key = `${width}x${height}`;
      let page = pages.get(key);
      if (!page) {
        page = await browser.newPage({ viewport: { width, height }, deviceScaleFactor: 1 });
        await page.route("**/*", (route) => {
          const url = route.request().url();
          if (url === LOGO_URL) return route.fulfill({ status: 200, contentType: "image/svg+xml", body: LOGO_SVG });
          blocked.push(url);
          return route.abort();
        });
        pages.set(key, page);
      }
      await page.setContent(html, { waitUntil: "load" });
      return page;
    }

    describe.each(CASES)("$locale $kind", ({ locale, kind }) => {
      const mail = renderOtpMail(locale, kind, FACTS);

      it.each([375, 800])("at %i px: the code is visible and nothing scrolls sideways", async (width) => {
        const page = await show(mail.html, width);
        const text = await page.innerText("body");
        expect(text).toContain(CODE);
        expect(text).toContain(EXPIRY[locale]);

        const code = page.getByText(CODE, { exact: true });
        await expect.poll(() => code.isVisible()).toBe(true);
        const box = await code.boundingBox();
        expect(box).not.toBeNull();
        expect(box!.x).toBeGreaterThanOrEqual(0);
        expect(box!.x + box!.width).toBeLessThanOrEqual(width);
        // Big enough to read: the 32 px monospace digits.
        expect(box!.height).toBeGreaterThanOrEqual(32);

        const scrollWidth = await page.evaluate(() => document.documentElement.scrollWidth);
        expect(scrollWidth).toBeLessThanOrEqual(width);

        // The logo was loaded (from memory) and drawn.
        const logoWidth = await page.locator("img").evaluate((img: HTMLImageElement) => (img.complete ? img.naturalWidth : 0));
        expect(logoWidth).toBeGreaterThan(0);
      });
    });

    it("the checks catch a mail that overflows or hides its code", async () => {
      const page = await show(`<!doctype html><body style="margin:0"><div style="width:500px">wide</div><span style="display:none">${CODE}</span></body>`, 375);
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeGreaterThan(375);
      expect(await page.getByText(CODE, { exact: true }).isVisible()).toBe(false);
      expect(await page.innerText("body")).not.toContain(CODE);
    });

    it("asked for nothing but the logo", () => {
      expect(blocked).toEqual([]);
    });

    it.runIf(UPDATE).each([...LOCALES])("writes docs/mail/%s.png (sign-up mail, 600 px, full page)", async (locale) => {
      await mkdir(DOCS, { recursive: true });
      // A short viewport, so the full-page shot ends where the mail does.
      const page = await show(renderOtpMail(locale, "signup", FACTS).html, 600, 200);
      const file = path.join(DOCS, `${locale}.png`);
      const png = await page.screenshot({ path: file, fullPage: true });
      // A PNG, 600 px wide.
      expect(png.subarray(1, 4).toString("latin1")).toBe("PNG");
      expect(png.readUInt32BE(16)).toBe(600);
      // Taller than the viewport: the whole mail, not just the top of it.
      expect(png.readUInt32BE(20)).toBeGreaterThan(300);
      expect(existsSync(file)).toBe(true);
    });
  },
);
