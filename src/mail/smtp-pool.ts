// A pool of SMTP sessions built on nodemailer's SMTPConnection, for mail that
// is already bytes. nodemailer's own pooled transport runs every mail through
// its Mailer: plugins, a MailComposer and MIME tree, a generated Message-ID
// and boundary (two CSPRNG reads), and a stream pipeline, even when the
// message is given raw. Our messages are prebuilt (prebuilt-mime.ts), so
// only the SMTP session is needed; that part stays nodemailer's (greeting,
// EHLO, STARTTLS, AUTH, dot-stuffing, reply parsing), and this file only
// decides which session a mail goes out on, how its bytes are grouped into
// writes (coalesceWrites), and when a mail is given up (its deadline:
// mail-deadlines.ts).
import net from "node:net";
import SMTPConnection from "nodemailer/lib/smtp-connection/index.js";
import { type Mail, MailDeadlines } from "./mail-deadlines.js";

export interface SmtpPoolOptions {
  readonly host: string;
  readonly port: number;
  /** smtps: TLS from the first byte; otherwise STARTTLS when offered. */
  readonly secure: boolean;
  readonly auth?: { readonly user: string; readonly pass: string };
  /** At most this many sessions open at once. */
  readonly maxConnections: number;
  readonly connectionTimeoutMs: number;
  readonly greetingTimeoutMs: number;
  /** A session silent this long is closed: mid-mail it fails the mail. */
  readonly socketTimeoutMs: number;
}

export interface Envelope {
  readonly from: string;
  readonly to: readonly string[];
}

/** One SMTP session and the mail it is sending, if any. */
class Session {
  private pending: ((err: Error) => void) | undefined;
  /** Closed, by us, the server or a failure; set once. */
  gone = false;

  constructor(
    private readonly connection: SMTPConnection,
    /** The TCP connection under it (under TLS too). */
    private readonly socket: net.Socket,
    onGone: (session: Session) => void,
    /** Set on plain TCP sessions, whose writes are coalesced (coalesceWrites). */
    private readonly writes?: MailWrites,
  ) {
    // An idle session the server closes (or that times out) leaves the pool;
    // a session that fails mid-mail fails that mail. nodemailer reports
    // both as 'error' then 'end', without calling the send's callback.
    const gone = (err?: Error) => {
      if (this.gone) return;
      this.gone = true;
      onGone(this);
      const pending = this.pending;
      this.pending = undefined;
      pending?.(err ?? Object.assign(new Error("SMTP connection closed"), { code: "ECONNECTION" }));
    };
    connection.on("error", gone);
    connection.on("end", () => gone());
  }

  send(envelope: Envelope, raw: Buffer, mail: Mail): Promise<void> {
    this.writes?.expect(envelope);
    return new Promise((resolve, reject) => {
      let settled = false;
      const settle = (err?: Error | null) => {
        if (settled) return;
        settled = true;
        this.pending = undefined;
        mail.giveUp = undefined;
        if (err) reject(err);
        else resolve();
      };
      this.pending = settle;
      mail.giveUp = this.abandon;
      this.connection.send({ from: envelope.from, to: [...envelope.to] }, raw, (err) => settle(err));
    });
  }

  /**
   * The mail's deadline passed mid-send: it fails with `err`, and the
   * connection is reset, not ended. An end would still send whatever of the
   * mail is queued on the socket (its final dot, say), and leave the relay
   * free to accept it after we gave up. A reset discards it. The session is
   * then gone, like any whose mail failed.
   */
  private readonly abandon = (err: Error): void => {
    this.pending?.(err);
    if (this.socket.destroyed) return;
    // Whatever the socket reports as it goes is of no interest now.
    this.socket.on("error", () => {});
    this.socket.resetAndDestroy();
  };

  /** nodemailer ends the session with 'end' at once, which retires it. */
  close(): void {
    this.connection.close();
  }
}

export class SmtpPool {
  private readonly idle: Session[] = [];
  private readonly sessions = new Set<Session>();
  private readonly waiting: ((session: Session | undefined) => void)[] = [];
  private open = 0;
  private closed = false;
  /**
   * How many sessions the server accepted when it refused one more: relays
   * limit connections per client (Postfix: 50 by default), and a mail should
   * wait for a session the server does accept rather than fail. Lifted a
   * minute later, in case the limit was passing.
   */
  private ceiling = Number.POSITIVE_INFINITY;
  private ceilingUntil = 0;
  private readonly deadlines = new MailDeadlines();

  constructor(private readonly options: SmtpPoolOptions) {}

  /**
   * Sends one message on a free session, opening one when none is free and
   * the pool has room. A session whose mail failed is closed, as nodemailer's
   * pool does: after a failure its state is not worth trusting.
   * `deadline` (Date.now() time): when the mail is given up, failing with
   * ETIMEDOUT, whether it is waiting for a session or being sent.
   */
  async send(envelope: Envelope, raw: Buffer, deadline?: number): Promise<void> {
    const mail = this.deadlines.start(deadline);
    try {
      const session = await this.acquire(mail);
      try {
        await session.send(envelope, raw, mail);
      } catch (err) {
        session.close();
        throw err;
      }
      this.release(session);
    } finally {
      this.deadlines.end(mail);
    }
  }

  /** Ends every session, a mail under way included (it fails), and refuses new mail. */
  close(): void {
    this.closed = true;
    this.deadlines.close();
    for (const session of [...this.sessions]) session.close();
    this.wakeAll();
  }

  private async acquire(mail: Mail): Promise<Session> {
    if (this.closed) throw Object.assign(new Error("the SMTP pool is closed"), { code: "ECONNECTION" });
    mail.check();
    const free = this.idle.pop();
    if (free) return free;
    if (this.open < this.limit()) {
      this.open++;
      // A mail given up while its session opens leaves without it; the
      // session, once open, goes to the next mail.
      const session = await mail.until(this.opened(this.connect()), (orphan) => {
        if (orphan) this.release(orphan);
      });
      return session ?? this.nextFree(mail);
    }
    return this.nextFree(mail);
  }

  /**
   * The session being opened; undefined when the server refused it while
   * others are open (wait for one of those). What a failure to open one
   * means for the pool is settled here, whether or not its mail still waits.
   */
  private async opened(connecting: Promise<Session>): Promise<Session | undefined> {
    try {
      return await connecting;
    } catch (err) {
      this.open--;
      if (unreachable(err)) {
        // Down, not capping us: every mail waiting tries (and fails) now,
        // a pool's worth at a time, instead of one timeout after another
        // while they all hold their delivery slots.
        this.wakeAll();
        throw err;
      }
      if (this.open > 0 && !this.closed) {
        // Refused while other sessions are open: wait for one of those.
        this.ceiling = this.open;
        this.ceilingUntil = Date.now() + 60_000;
        return undefined;
      }
      this.handOn();
      throw err;
    }
  }

  private limit(): number {
    if (this.ceilingUntil <= Date.now()) this.ceiling = Number.POSITIVE_INFINITY;
    return Math.min(this.options.maxConnections, this.ceiling);
  }

  private async nextFree(mail: Mail): Promise<Session> {
    const session = await new Promise<Session | undefined>((resolve, reject) => {
      this.waiting.push(resolve);
      mail.giveUp = (err) => {
        // Out of the queue, so the session or free slot it would have been
        // handed goes to a mail still waiting.
        const at = this.waiting.indexOf(resolve);
        if (at >= 0) this.waiting.splice(at, 1);
        reject(err);
      };
    });
    mail.giveUp = undefined;
    // Woken with no session: a slot freed (open one) or the pool closed.
    return session ?? this.acquire(mail);
  }

  private release(session: Session): void {
    if (session.gone) return;
    if (this.closed) {
      session.close();
      return;
    }
    const waiter = this.waiting.shift();
    if (waiter) waiter(session);
    else this.idle.push(session);
  }

  /** A session is gone (closed by us, the server or a failure): its slot is free. */
  private retire(session: Session): void {
    this.sessions.delete(session);
    const at = this.idle.indexOf(session);
    if (at >= 0) this.idle.splice(at, 1);
    this.open--;
    this.handOn();
  }

  /** A slot freed: the next waiter opens a session of its own. */
  private handOn(): void {
    this.waiting.shift()?.(undefined);
  }

  /** Every waiter tries to open a session of its own (as many as the pool allows; the rest wait again). */
  private wakeAll(): void {
    for (const waiter of this.waiting.splice(0)) waiter(undefined);
  }

  private async connect(): Promise<Session> {
    const { host, port, secure, auth } = this.options;
    const socket = await connectNoDelay(host, port, this.options.connectionTimeoutMs);
    const connection = new SMTPConnection({
      host,
      port,
      secure,
      connection: socket,
      connectionTimeout: this.options.connectionTimeoutMs,
      greetingTimeout: this.options.greetingTimeoutMs,
      socketTimeout: this.options.socketTimeoutMs,
    } as SMTPConnection.Options);
    try {
      await new Promise<void>((resolve, reject) => {
        const closed = () => reject(Object.assign(new Error("SMTP connection closed before it was ready"), { code: "ECONNECTION" }));
        connection.on("error", reject);
        connection.on("end", closed);
        connection.connect(() => {
          const ready = (err?: Error | null) => {
            connection.off("error", reject);
            connection.off("end", closed);
            if (err) reject(err);
            else resolve();
          };
          // As nodemailer's pool: log in only where the server offers AUTH.
          if (!auth || !(connection as unknown as { allowsAuth: boolean }).allowsAuth) ready();
          else connection.login({ credentials: { user: auth.user, pass: auth.pass } }, ready);
        });
      });
    } catch (err) {
      // The rejecting listeners stay: they swallow whatever the dropped session still reports.
      connection.on("error", () => {});
      connection.close();
      throw err;
    }
    // Over TLS the socket's bytes are the TLS layer's: writes are left as they are.
    // Installed once the session is ready: its EHLO reply says whether it pipelines.
    const writes = connection.secure ? undefined : coalesceWrites(socket, offersPipelining(connection));
    const session = new Session(connection, socket, (s) => this.retire(s), writes);
    this.sessions.add(session);
    return session;
  }
}

/**
 * A relay that could not be reached or never answered (no connection, no
 * greeting): it is down, which says nothing about how many sessions it
 * allows. A relay that answers and refuses (a 421 greeting, a closed
 * connection) may be capping this client's sessions.
 */
const UNREACHABLE = new Set(["ETIMEDOUT", "ECONNREFUSED", "EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND", "EAI_AGAIN"]);

function unreachable(err: unknown): boolean {
  return UNREACHABLE.has(String((err as { code?: unknown } | null)?.code));
}

/**
 * Opens a TCP connection with Nagle's algorithm off. A mail goes out as
 * several small writes; with Nagle on, the last one waits for the server to
 * acknowledge the one before, and servers delay their ACKs (about 40 ms on
 * Linux), so every mail on a connection would stall that long.
 */
function connectNoDelay(host: string, port: number, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, noDelay: true });
    const timer = setTimeout(() => socket.destroy(Object.assign(new Error(`SMTP connect to ${host}:${port} timed out`), { code: "ETIMEDOUT" })), timeoutMs);
    socket.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.removeAllListeners("error");
      resolve(socket);
    });
  });
}

/**
 * Whether the server listed PIPELINING (RFC 2920) in its EHLO reply.
 * nodemailer keeps the list it parsed in a field of its own; should that
 * change, envelopes simply go out one command at a time again.
 */
function offersPipelining(connection: SMTPConnection): boolean {
  const listed = (connection as unknown as { _supportedExtensions?: unknown })._supportedExtensions;
  return Array.isArray(listed) && listed.includes("PIPELINING");
}

/** Told, before each mail, the envelope nodemailer is about to send. */
interface MailWrites {
  expect(envelope: Envelope): void;
}

/**
 * Fewer writes per mail on a plain TCP session. Each write is a system call
 * that wakes the server, and nodemailer makes five per mail: MAIL FROM, RCPT
 * TO and DATA, each after the reply to the one before, then the message,
 * then the ending ".\r\n" apart. Two things change, and nodemailer's
 * session (its commands, its reading of replies, dot-stuffing) does not:
 *
 * - The message and its ending leave together: the first write after DATA
 *   corks the socket until the loop's check phase (setImmediate: after the
 *   data stream's ticks, however many it takes).
 * - With `pipelining` (the server offers PIPELINING, RFC 2920), the RCPT TO
 *   and DATA lines nodemailer is bound to write next ride along with its
 *   MAIL FROM, and when it writes them, after each reply as usual, those
 *   writes are dropped: the bytes already left. The server answers the
 *   three in order and nodemailer reads the answers as it always does, so a
 *   refusal at any step still fails the mail with that reply's code (the
 *   pool then closes the session, whose later replies belong to no
 *   command). A write other than the one expected means the session is out
 *   of step: it is destroyed, failing its mail, which is retried.
 *
 * Two writes per mail with pipelining, four without.
 */
function coalesceWrites(socket: net.Socket, pipelining: boolean): MailWrites {
  const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
  const uncork = () => socket.uncork();
  /** The lines to send with the next MAIL FROM. */
  let ahead: Buffer[] = [];
  /** Lines already sent that nodemailer has yet to write. */
  let sent: Buffer[] = [];
  /** The next write is the message. */
  let messageNext = false;
  socket.write = ((chunk: unknown, ...rest: unknown[]) => {
    if (messageNext) {
      messageNext = false;
      socket.cork();
      setImmediate(uncork);
      return write(chunk, ...rest);
    }
    const bytes = Buffer.isBuffer(chunk) ? chunk : undefined;
    const due = sent.shift();
    if (due !== undefined && !bytes?.equals(due)) {
      socket.destroy(Object.assign(new Error("SMTP session out of step with its pipelined envelope"), { code: "EPROTOCOL" }));
      return false;
    }
    // DATA went out, now or with the envelope: the next write is the message.
    messageNext = bytes?.equals(DATA) ?? false;
    if (due !== undefined) return true;
    if (bytes && ahead.length > 0 && bytes.length >= MAIL_FROM.length && MAIL_FROM.compare(bytes, 0, MAIL_FROM.length) === 0) {
      sent = ahead;
      ahead = [];
      return write(Buffer.concat([bytes, ...sent]), ...rest);
    }
    return write(chunk, ...rest);
  }) as typeof socket.write;
  return {
    expect(envelope) {
      sent = [];
      messageNext = false;
      // As nodemailer writes them: each recipient trimmed, no DSN arguments (none are asked for).
      if (pipelining) ahead = [...envelope.to.map((to) => Buffer.from(`RCPT TO:<${to.trim()}>\r\n`)), DATA];
    },
  };
}

const MAIL_FROM = Buffer.from("MAIL FROM:");
const DATA = Buffer.from("DATA\r\n");
