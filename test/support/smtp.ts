// A real SMTP server (smtp-server) in this process: mail the service sends
// arrives here over TCP and is parsed (mailparser) for assertions.
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { simpleParser, type ParsedMail } from "mailparser";
import { SMTPServer } from "smtp-server";
import type { SmtpPoolOptions } from "../../src/mail/smtp-pool.js";

export interface ReceivedMail {
  readonly to: string;
  readonly from: string;
  readonly subject: string;
  readonly text: string;
  readonly html: string;
  readonly messageId: string;
  readonly raw: string;
}

export interface TestSmtp {
  readonly url: string;
  readonly mails: ReceivedMail[];
  /** Resolves once `count` mails have arrived (or rejects after timeoutMs). */
  waitFor(count: number, timeoutMs?: number): Promise<ReceivedMail[]>;
  /** Set to answer the next DATA with this SMTP reply code instead of accepting. */
  reject: ((mail: { to: string }) => number | undefined) | undefined;
  /**
   * Set to make the relay slow: the reply to a mail for which it returns a
   * promise waits until that settles. A mail whose client hung up meanwhile
   * was never acknowledged: it is dropped (listed in `dropped`), not kept.
   */
  hold: ((mail: { to: string; messageId: string }) => Promise<void> | undefined) | undefined;
  /** Message-IDs of the held mails whose client hung up before the reply. */
  readonly dropped: string[];
  close(): Promise<void>;
}

export async function startSmtp(listenPort = 0): Promise<TestSmtp> {
  const mails: ReceivedMail[] = [];
  const waiters: (() => void)[] = [];
  /** Sessions whose client has gone. */
  const closed = new Set<string>();
  const state: TestSmtp = {
    url: "",
    mails,
    reject: undefined,
    hold: undefined,
    dropped: [],
    async waitFor(count, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (mails.length < count) {
        if (Date.now() > deadline) throw new Error(`expected ${count} mails, got ${mails.length}`);
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 50);
        });
      }
      return mails.slice(0, count);
    },
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS", "AUTH"],
    logger: false,
    onClose(session) {
      closed.add(session.id);
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", async () => {
        const to = session.envelope.rcptTo.map((r) => r.address).join(",");
        const code = state.reject?.({ to });
        if (code !== undefined) {
          const err = Object.assign(new Error(`rejected with ${code}`), { responseCode: code });
          return callback(err);
        }
        const raw = Buffer.concat(chunks).toString("utf8");
        const parsed: ParsedMail = await simpleParser(raw);
        const held = state.hold?.({ to, messageId: parsed.messageId ?? "" });
        if (held) {
          await held;
          if (closed.has(session.id)) {
            state.dropped.push(parsed.messageId ?? "");
            return;
          }
        }
        mails.push({
          to,
          from: parsed.from?.text ?? "",
          subject: parsed.subject ?? "",
          text: parsed.text ?? "",
          html: typeof parsed.html === "string" ? parsed.html : "",
          messageId: parsed.messageId ?? "",
          raw,
        });
        for (const w of waiters.splice(0)) w();
        callback();
      });
    },
  });
  // A client that resets its session mid-mail (one given up at its
  // deadline) is reported as an error; a relay goes on serving the others.
  server.on("error", () => {});
  server.listen(listenPort, "127.0.0.1");
  await once(server.server, "listening");
  const { port } = server.server.address() as AddressInfo;
  return Object.assign(state, { url: `smtp://127.0.0.1:${port}` });
}

/** The 6-digit code in a mail's text part. */
export function codeIn(mail: ReceivedMail): string {
  const m = /\b(\d{6})\b/.exec(mail.text);
  if (!m) throw new Error(`no code in mail: ${mail.text}`);
  return m[1]!;
}

/** A small message to `to`, as bytes, for tests that drive an SMTP pool directly. */
export const rawMail = (to: string): Buffer => Buffer.from(`From: a@otp.localhost\r\nTo: ${to}\r\nSubject: code\r\n\r\nYour code is 123456.\r\n`);

/** The envelope of rawMail(to). */
export const envelopeTo = (to: string) => ({ from: "a@otp.localhost", to: [to] });

/** SMTP pool options for a server on 127.0.0.1:port, with timeouts short enough for tests. */
export function testPoolOptions(port: number, maxConnections: number, overrides: Partial<SmtpPoolOptions> = {}): SmtpPoolOptions {
  return {
    host: "127.0.0.1",
    port,
    secure: false,
    maxConnections,
    connectionTimeoutMs: 2_000,
    greetingTimeoutMs: 2_000,
    socketTimeoutMs: 5_000,
    ...overrides,
  };
}
