// /dev/mailbox: the dev mailbox as an inbox page for browsers (they send
// Accept: text/html), and as the same JSON as ever for everyone else (curl,
// scripts, tests), both filtered by ?to=. The page is rendered here from
// escaped text only; each mail's HTML part is shown in a sandboxed frame
// (srcdoc, no scripts, no same origin), and the page's own script and style
// are allowed by hash under a strict Content-Security-Policy.
import { createHash } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { DevMail } from "../domain/dev-mail.js";
import { failure, writeError } from "./error-writer.js";
import { type NodeRequest, type NodeResponse, writeJson } from "./http-io.js";

/** A kept mail; `code` is shown with a copy button on the page, never in the JSON answer. */
export type DevInboxEntry = DevMail & { readonly code?: string };

/** What the dev mailbox routes need of the mailbox. */
export interface DevMailboxView {
  /** Newest first; `to`: only mail to that address. */
  list(to?: string): readonly DevInboxEntry[];
  clear(): void;
}

const PATH = "/dev/mailbox";

/** Escapes text for HTML content and for double- or single-quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}

const STYLE = `
:root { color-scheme: light; --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --accent: #2451b3; --bg: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: var(--bg); }
header.top { background: #fff; border-bottom: 1px solid var(--line); padding: 16px 24px; display: flex; flex-wrap: wrap; gap: 12px 24px; align-items: center; }
header.top h1 { font-size: 20px; margin: 0; }
header.top p { margin: 0; color: var(--muted); flex: 1 1 280px; }
form { display: flex; gap: 8px; align-items: center; margin: 0; }
input[type=email] { font: inherit; padding: 6px 8px; border: 1px solid var(--line); border-radius: 6px; min-width: 240px; }
button, a.button { font: inherit; padding: 6px 12px; border-radius: 6px; border: 1px solid var(--line); background: #fff; color: var(--ink); cursor: pointer; text-decoration: none; }
button.primary { background: var(--accent); border-color: var(--accent); color: #fff; }
button.danger { color: #b42318; }
main { padding: 16px 24px 48px; max-width: 1100px; }
.summary { color: var(--muted); margin: 0 0 12px; }
.empty { background: #fff; border: 1px dashed var(--line); border-radius: 8px; padding: 32px; text-align: center; color: var(--muted); }
article { background: #fff; border: 1px solid var(--line); border-radius: 8px; margin: 0 0 16px; overflow: hidden; }
article > header { padding: 12px 16px; display: grid; grid-template-columns: 1fr auto; gap: 4px 16px; border-bottom: 1px solid var(--line); }
article h2 { font-size: 16px; margin: 0; overflow-wrap: anywhere; }
.meta { color: var(--muted); font-size: 13px; margin: 0; }
.meta b { color: var(--ink); font-weight: 600; }
.code { grid-row: 1 / span 2; grid-column: 2; display: flex; align-items: center; gap: 8px; }
.code output { font: 600 24px/1 ui-monospace, SFMono-Regular, Menlo, monospace; letter-spacing: 3px; user-select: all; padding: 6px 10px; background: #eef2fb; border-radius: 6px; }
.parts { display: grid; grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); }
.parts section { padding: 12px 16px; min-width: 0; }
.parts section + section { border-left: 1px solid var(--line); }
.parts h3 { font-size: 12px; text-transform: uppercase; letter-spacing: .05em; color: var(--muted); margin: 0 0 8px; }
iframe { width: 100%; height: 420px; border: 1px solid var(--line); border-radius: 6px; background: #fff; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; margin: 0; font: 13px/1.5 ui-monospace, SFMono-Regular, Menlo, monospace; }
details > summary { cursor: pointer; padding: 10px 16px; color: var(--muted); }
@media (max-width: 760px) { .parts { grid-template-columns: 1fr; } .parts section + section { border-left: 0; border-top: 1px solid var(--line); } .code { grid-row: auto; grid-column: 1; } }
`;

// Copy buttons, and a reload when new mail arrives (unless the reader is
// selecting or typing). Plain script, no input from the page's data.
const SCRIPT = `
for (const button of document.querySelectorAll("button[data-copy]")) {
  button.addEventListener("click", async () => {
    const code = button.getAttribute("data-copy");
    try { await navigator.clipboard.writeText(code); }
    catch { const range = document.createRange(); range.selectNodeContents(button.previousElementSibling); const s = getSelection(); s.removeAllRanges(); s.addRange(range); document.execCommand("copy"); }
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = "Copy"; }, 1500);
  });
}
const newest = document.body.getAttribute("data-newest");
const query = location.search;
setInterval(async () => {
  if (document.hidden || String(getSelection()).length > 0 || document.activeElement?.tagName === "INPUT") return;
  try {
    const res = await fetch("${PATH}" + query, { headers: { accept: "application/json" } });
    const mails = await res.json();
    if ((mails[0]?.id ?? "") !== newest) location.reload();
  } catch {}
}, 2000);
`;

const hash = (text: string) => `'sha256-${createHash("sha256").update(text).digest("base64")}'`;

/**
 * Nothing but the page's own script and style runs or loads; frames inherit
 * this policy, so the mails' inline style attributes are allowed
 * (style-src-attr) and their images (a tenant's logo) may come from https.
 */
export const INBOX_CSP = [
  "default-src 'none'",
  `script-src ${hash(SCRIPT)}`,
  `style-src ${hash(STYLE)}`,
  "style-src-attr 'unsafe-inline'",
  "img-src 'self' data: https:",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join("; ");

function formatTime(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : `${d.toISOString().slice(0, 19).replace("T", " ")} UTC`;
}

function renderMail(mail: DevInboxEntry, index: number): string {
  const e = escapeHtml;
  const id = `mail-${index}`;
  const code = mail.code
    ? `<div class="code"><output aria-label="Code">${e(mail.code)}</output><button type="button" data-copy="${e(mail.code)}" aria-label="Copy the code ${e(mail.code)}">Copy</button></div>`
    : "";
  const parts = `<div class="parts">
<section><h3>HTML part</h3><iframe sandbox srcdoc="${e(mail.html)}" title="HTML part: ${e(mail.subject)}" loading="lazy" referrerpolicy="no-referrer"></iframe></section>
<section><h3>Text part</h3><pre>${e(mail.text)}</pre></section>
</div>`;
  // The newest three are open; older ones fold (each frame costs a document).
  const body = index < 3 ? parts : `<details><summary>Show the mail</summary>${parts}</details>`;
  return `<article aria-labelledby="${id}">
<header><h2 id="${id}">${e(mail.subject)}</h2>${code}<p class="meta">To <b>${e(mail.to)}</b> · <time datetime="${e(mail.created_at)}">${e(formatTime(mail.created_at))}</time></p></header>
${body}
</article>`;
}

export function renderInbox(mails: readonly DevInboxEntry[], to: string | undefined): string {
  const e = escapeHtml;
  const filtered = to !== undefined && to !== "";
  const summary = filtered
    ? `${mails.length} ${mails.length === 1 ? "mail" : "mails"} to <b>${e(to)}</b> · <a href="${PATH}">show all</a>`
    : `${mails.length} ${mails.length === 1 ? "mail" : "mails"}, newest first`;
  const list =
    mails.length > 0
      ? mails.map(renderMail).join("\n")
      : `<p class="empty">${filtered ? `No mail to ${e(to)} yet.` : "No mail yet."} Send a code (from the <a href="/signin">sign-in page</a> or with curl) and it shows up here.</p>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Dev mailbox${filtered ? ` · ${e(to)}` : ""}</title>
<link rel="icon" href="/favicon.ico">
<style>${STYLE}</style>
</head>
<body data-newest="${e(mails[0]?.id ?? "")}">
<header class="top">
<h1>Dev mailbox</h1>
<p>Mail this service sent with no SMTP server configured. Development only.</p>
<form method="get" action="${PATH}" role="search">
<label for="to">Recipient</label>
<input id="to" name="to" type="email" placeholder="jane.doe@example.com" value="${e(to ?? "")}">
<button type="submit" class="primary">Filter</button>
</form>
<form method="post" action="${PATH}/clear">
<button type="submit" class="danger">Clear the mailbox</button>
</form>
</header>
<main>
<p class="summary" role="status">${summary}</p>
${list}
</main>
<script>${SCRIPT}</script>
</body>
</html>
`;
}

/**
 * Clearing changes state: a browser may do it only from this page's own
 * origin. Browsers say where a request comes from in Sec-Fetch-Site (and in
 * Origin, which this page's no-referrer policy turns into "null"); a script
 * or curl sends neither.
 */
function sameOriginOrNotABrowser(req: NodeRequest): boolean {
  const site = req.headers["sec-fetch-site"];
  if (site !== undefined) return site === "same-origin";
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  return origin === `http://${req.headers.host}` || origin === `https://${req.headers.host}`;
}

/** Answers the dev mailbox's routes; false when the request is not one of them. */
export function serveDevInbox(mailbox: DevMailboxView, req: NodeRequest, res: NodeResponse, url: URL): boolean {
  const r = res as ServerResponse;
  if (url.pathname === PATH && (req.method === "GET" || req.method === "HEAD")) {
    const to = url.searchParams.get("to") ?? undefined;
    const mails = mailbox.list(to);
    r.setHeader("vary", "Accept");
    r.setHeader("cache-control", "no-store");
    if (/\btext\/html\b/.test(String((req as IncomingMessage).headers.accept ?? ""))) {
      const body = renderInbox(mails, to);
      r.writeHead(200, {
        "content-type": "text/html; charset=utf-8",
        "content-length": Buffer.byteLength(body),
        "content-security-policy": INBOX_CSP,
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
      });
      if (req.method === "HEAD") r.end();
      else r.end(body);
      return true;
    }
    writeJson(res, 200, mails.map(({ code: _code, ...mail }) => mail));
    return true;
  }
  const clearing = (url.pathname === PATH && req.method === "DELETE") || (url.pathname === `${PATH}/clear` && req.method === "POST");
  if (!clearing) return false;
  if (!sameOriginOrNotABrowser(req)) {
    writeError(res, "plain", failure("forbidden", "The dev mailbox can be cleared only from its own page."));
    return true;
  }
  mailbox.clear();
  if (req.method === "DELETE") {
    r.writeHead(204);
    r.end();
  } else {
    r.writeHead(303, { location: PATH, "content-length": 0 });
    r.end();
  }
  return true;
}
