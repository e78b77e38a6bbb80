// Where rendered mail goes: pooled SMTP sessions, or, with no SMTP server
// configured, the in-memory dev mailbox. Both go through nodemailer, which
// builds the MIME (encoding headers, so no CR/LF or non-ASCII name can inject
// one) and speaks SMTP (on a thread of its own: threaded-smtp-pool.ts).
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import type { Transporter } from "nodemailer";
import MailComposer from "nodemailer/lib/mail-composer/index.js";
import type { Logger } from "pino";
import { PrebuiltMime } from "./prebuilt-mime.js";
import { ThreadedSmtpPool } from "./threaded-smtp-pool.js";
import type { DevMailWithCode } from "../domain/dev-mail.js";

export interface OutgoingMail {
  readonly from: { readonly name: string; readonly address: string };
  readonly to: string;
  readonly replyTo?: string;
  readonly subject: string;
  readonly text: string;
  readonly html: string;
  readonly messageId: string;
  /** Only the dev mailbox may show it, in its log line. */
  readonly code: string;
  /**
   * When delivery must be over (Date.now() time): past it, SMTP gives the
   * mail up and it fails with ETIMEDOUT. Undefined: no deadline beyond the
   * SMTP pool's own timeouts.
   */
  readonly deadline?: number;
}

export interface Mailer {
  send(mail: OutgoingMail): Promise<void>;
  close(): void;
}

/** An SMTP reply code, when the failure came from the server. */
export function smtpResponseCode(err: unknown): number | undefined {
  const code = (err as { responseCode?: unknown } | null)?.responseCode;
  return typeof code === "number" ? code : undefined;
}

function message(mail: OutgoingMail) {
  return {
    from: mail.from,
    to: mail.to,
    replyTo: mail.replyTo,
    subject: mail.subject,
    text: mail.text,
    html: mail.html,
    messageId: mail.messageId,
    // Quoted-printable for every text part: the templates are mostly ASCII,
    // and naming the encoding spares nodemailer scanning each body to choose.
    textEncoding: "quoted-printable" as const,
    // A retried delivery carries the same Message-ID, so receivers can drop
    // a duplicate.
    headers: { "Auto-Submitted": "auto-generated" },
  };
}

export function createSmtpMailer(url: string, maxConnections: number): Mailer {
  const u = new URL(url);
  const secure = u.protocol === "smtps:";
  const pool = new ThreadedSmtpPool({
    host: u.hostname,
    port: u.port ? Number(u.port) : secure ? 465 : 587,
    secure,
    ...(u.username ? { auth: { user: decodeURIComponent(u.username), pass: decodeURIComponent(u.password) } } : {}),
    maxConnections,
    connectionTimeoutMs: 10_000,
    greetingTimeoutMs: 10_000,
    socketTimeoutMs: 30_000,
  });
  const prebuilt = new PrebuiltMime();
  return {
    async send(mail) {
      const options = message(mail);
      const raw = (await prebuilt.render({ options, code: mail.code }, new Date())) ?? (await compose(options));
      await pool.send({ from: mail.from.address, to: [mail.to] }, raw, mail.deadline);
    },
    close() {
      pool.close();
    },
  };
}

/** The whole message through nodemailer's composer, for mail that is not prebuilt. */
function compose(options: ReturnType<typeof message>): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    new MailComposer(options).compile().build((err, raw) => (err ? reject(err) : resolve(raw))),
  );
}

export interface DevMailboxOptions {
  /** Where the mails are kept across restarts (embedded mode: in DATA_DIR); unset: memory only. */
  readonly file?: string;
  /** At most this many mails… */
  readonly capacity?: number;
  /** …and at most about this many bytes of them; the oldest go first. */
  readonly maxBytes?: number;
}

/**
 * Keeps the newest mails and logs each one, code included. With a file, the
 * mails survive a restart: the file is read at start and rewritten (whole,
 * through a temporary file and a rename) shortly after each change.
 */
export class DevMailbox implements Mailer {
  private mails: DevMailWithCode[] = [];
  /**
   * nodemailer's JSON transport, which composes each mail as SMTP would.
   * Loaded with the first mail: a service that delivers by SMTP never loads
   * nodemailer's transports (about 3 MB of its memory).
   */
  private transport: Promise<Transporter> | undefined;
  private readonly capacity: number;
  private readonly maxBytes: number;
  private saveTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly logger: Logger,
    private readonly options: DevMailboxOptions = {},
  ) {
    this.capacity = options.capacity ?? 200;
    this.maxBytes = options.maxBytes ?? 2 * 1024 * 1024;
    if (options.file) this.mails = this.bound(readKept(options.file, logger));
  }

  async send(mail: OutgoingMail): Promise<void> {
    this.transport ??= import("nodemailer").then((nodemailer) => nodemailer.default.createTransport({ jsonTransport: true }));
    await (await this.transport).sendMail(message(mail));
    this.mails.unshift({
      id: mail.messageId,
      to: mail.to,
      subject: mail.subject,
      text: mail.text,
      html: mail.html,
      created_at: new Date().toISOString(),
      code: mail.code,
    });
    this.mails = this.bound(this.mails);
    this.saveSoon();
    // Development mode only: the point of the dev mailbox is to show the code.
    this.logger.info({ to: maskEmail(mail.to), code: mail.code }, "dev mailbox: passcode mail");
  }

  /** Newest first; `to`: only mail to this address (case-insensitive). */
  list(to?: string): readonly DevMailWithCode[] {
    if (to === undefined || to === "") return this.mails;
    const wanted = to.trim().toLowerCase();
    return this.mails.filter((m) => m.to.toLowerCase() === wanted);
  }

  clear(): void {
    this.mails = [];
    this.saveSoon();
  }

  close(): void {
    if (this.saveTimer) {
      clearTimeout(this.saveTimer);
      this.saveTimer = undefined;
      this.save();
    }
  }

  private bound(mails: DevMailWithCode[]): DevMailWithCode[] {
    const kept = mails.slice(0, this.capacity);
    let bytes = 0;
    for (let i = 0; i < kept.length; i++) {
      bytes += Buffer.byteLength(JSON.stringify(kept[i]));
      if (bytes > this.maxBytes) return kept.slice(0, Math.max(1, i));
    }
    return kept;
  }

  private saveSoon(): void {
    if (!this.options.file || this.saveTimer) return;
    this.saveTimer = setTimeout(() => {
      this.saveTimer = undefined;
      this.save();
    }, 200);
    this.saveTimer.unref();
  }

  private save(): void {
    const file = this.options.file;
    if (!file) return;
    try {
      const temporary = `${file}.${process.pid}.tmp`;
      // Owner-only: the file holds live codes.
      writeFileSync(temporary, JSON.stringify(this.mails), { mode: 0o600 });
      renameSync(temporary, file);
    } catch (err) {
      this.logger.warn({ err }, "the dev mailbox could not be saved; it is kept in memory");
    }
  }
}

/** The mails a previous run kept; anything unreadable is dropped (it is only a dev mailbox). */
function readKept(file: string, logger: Logger): DevMailWithCode[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") logger.warn({ err }, "the kept dev mailbox cannot be read; starting empty");
    return [];
  }
  if (!Array.isArray(parsed)) return [];
  const text = (v: unknown) => (typeof v === "string" ? v : "");
  return parsed
    .filter((m): m is Record<string, unknown> => typeof m === "object" && m !== null && typeof m.id === "string" && typeof m.to === "string")
    .map((m) => ({
      id: text(m.id),
      to: text(m.to),
      subject: text(m.subject),
      text: text(m.text),
      html: text(m.html),
      created_at: text(m.created_at),
      code: text(m.code),
    }));
}

/** "jane.doe@example.com" → "ja***@example.com": enough to tell mails apart in a log. */
function maskEmail(address: string): string {
  const at = address.lastIndexOf("@");
  return at <= 0 ? "***" : `${address.slice(0, Math.min(2, at))}***${address.slice(at)}`;
}
