// The SMTP session pool against real servers over TCP: smtp-server where a
// full server is wanted, and a few lines of hand-written SMTP where the test
// needs a server that misbehaves at one exact step.
import { once } from "node:events";
import net, { type AddressInfo } from "node:net";
import { SMTPServer } from "smtp-server";
import { afterEach, describe, expect, it, vi } from "vitest";
import { smtpResponseCode } from "../../src/mail/mailer.js";
import { SmtpPool, type SmtpPoolOptions } from "../../src/mail/smtp-pool.js";
import { envelopeTo, rawMail, startSmtp, testPoolOptions } from "../support/smtp.js";

const raw = rawMail;
const envelope = envelopeTo;

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function pool(port: number, overrides: Partial<SmtpPoolOptions> = {}): SmtpPool {
  const p = new SmtpPool(testPoolOptions(port, 4, overrides));
  cleanups.push(() => p.close());
  return p;
}

/** smtp-server that keeps each mail's recipient and counts sessions. */
async function server(options: ConstructorParameters<typeof SMTPServer>[0] = {}) {
  const received: string[] = [];
  const sockets = new Set<net.Socket>();
  /** Sessions whose client has gone. */
  const closed = new Set<string>();
  let open = 0;
  let mostOpen = 0;
  const smtp = new SMTPServer({
    disabledCommands: ["STARTTLS"],
    authOptional: true,
    logger: false,
    onConnect(_session, callback) {
      mostOpen = Math.max(mostOpen, ++open);
      callback();
    },
    onClose(session) {
      open--;
      closed.add(session.id);
    },
    onData(stream, session, callback) {
      stream.resume();
      stream.on("end", () => {
        received.push(session.envelope.rcptTo.map((r) => r.address).join(","));
        callback();
      });
    },
    ...options,
  });
  // A client that resets its session mid-mail (one given up at its
  // deadline) is reported as an error; a relay goes on serving the others.
  smtp.on("error", () => {});
  smtp.server.on("connection", (s: net.Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  smtp.listen(0, "127.0.0.1");
  await once(smtp.server, "listening");
  cleanups.push(() => new Promise<void>((resolve) => smtp.close(() => resolve())));
  return {
    port: (smtp.server.address() as AddressInfo).port,
    received,
    sockets,
    closed,
    mostOpen: () => mostOpen,
  };
}

/**
 * Just enough SMTP to be a peer; `onData` decides what happens when a mail's
 * DATA command arrives on the n-th session (0-based).
 */
async function scriptedServer(
  onData: (session: number, socket: net.Socket) => "accept" | "drop" | "hang",
  maxOpen = Number.POSITIVE_INFINITY,
  options: {
    /** List PIPELINING in the EHLO reply. */
    readonly pipelining?: boolean;
    /** A refusal ("550 …") for this command of this session, or undefined to go on. */
    readonly refuse?: (session: number, verb: "MAIL" | "RCPT" | "DATA") => string | undefined;
  } = {},
) {
  let sessions = 0;
  let open = 0;
  let mostOpen = 0;
  const delivered: string[] = [];
  const srv = net.createServer((socket) => {
    if (open >= maxOpen) {
      socket.on("error", () => {});
      return void socket.end("421 too many connections from your address\r\n");
    }
    mostOpen = Math.max(mostOpen, ++open);
    socket.on("close", () => open--);
    const session = sessions++;
    let inData = false;
    let rcpt = "";
    // As a real server: no RCPT before an accepted MAIL, no DATA before an accepted RCPT.
    let mailAccepted = false;
    let rcptAccepted = false;
    socket.write("220 scripted ESMTP\r\n");
    let buffered = "";
    socket.on("data", (chunk) => {
      buffered += chunk.toString("latin1");
      for (;;) {
        if (inData) {
          const end = buffered.indexOf("\r\n.\r\n");
          if (end < 0) return;
          buffered = buffered.slice(end + 5);
          inData = false;
          mailAccepted = rcptAccepted = false;
          delivered.push(rcpt);
          socket.write("250 queued\r\n");
          continue;
        }
        const eol = buffered.indexOf("\r\n");
        if (eol < 0) return;
        const line = buffered.slice(0, eol);
        buffered = buffered.slice(eol + 2);
        const verb = line.slice(0, 4).toUpperCase();
        const refusal = verb === "MAIL" || verb === "RCPT" || verb === "DATA" ? options.refuse?.(session, verb) : undefined;
        if (verb === "EHLO" || verb === "HELO") socket.write(options.pipelining ? "250-scripted\r\n250 PIPELINING\r\n" : "250 scripted\r\n");
        else if (refusal) socket.write(`${refusal}\r\n`);
        else if (verb === "MAIL") {
          mailAccepted = true;
          socket.write("250 ok\r\n");
        } else if (verb === "RCPT" && !mailAccepted) socket.write("503 need MAIL first\r\n");
        else if (verb === "RCPT") {
          rcpt = /<([^>]*)>/.exec(line)?.[1] ?? "";
          rcptAccepted = true;
          socket.write("250 ok\r\n");
        } else if (verb === "DATA" && !rcptAccepted) socket.write("554 no valid recipients\r\n");
        else if (verb === "DATA") {
          const what = onData(session, socket);
          if (what === "drop") return void socket.destroy();
          if (what === "hang") return;
          inData = true;
          socket.write("354 go on\r\n");
        } else if (verb === "QUIT") socket.end("221 bye\r\n");
        else socket.write("502 no\r\n");
      }
    });
    socket.on("error", () => {});
  });
  srv.listen(0, "127.0.0.1");
  await once(srv, "listening");
  cleanups.push(() => new Promise<void>((resolve) => srv.close(() => resolve())));
  return { port: (srv.address() as AddressInfo).port, delivered, sessions: () => sessions, mostOpen: () => mostOpen };
}

/**
 * Sends a mail to warm a session up, then five more on it, and counts what
 * left the client's socket for the server during those five, where the
 * socket hands bytes to the system: once per _write or _writev.
 */
async function writesForFiveMails(port: number): Promise<number> {
  const p = pool(port, { maxConnections: 1 });
  await p.send(envelope("warm@example.com"), raw("warm@example.com"));
  const write = vi.spyOn(net.Socket.prototype, "_write");
  const writev = vi.spyOn(net.Socket.prototype, "_writev");
  try {
    for (let n = 0; n < 5; n++) await p.send(envelope(`m${n}@example.com`), raw(`m${n}@example.com`));
    return [...write.mock.contexts, ...writev.mock.contexts].filter((socket) => (socket as net.Socket).remotePort === port).length;
  } finally {
    write.mockRestore();
    writev.mockRestore();
  }
}

describe("SmtpPool", () => {
  it("never holds more sessions open than maxConnections, however many mails are waiting", async () => {
    const s = await server();
    const p = pool(s.port, { maxConnections: 3 });
    await Promise.all(Array.from({ length: 30 }, (_, i) => p.send(envelope(`many-${i}@example.com`), raw(`many-${i}@example.com`))));
    expect(s.received).toHaveLength(30);
    expect(s.mostOpen()).toBeLessThanOrEqual(3);
  });

  it("keeps to the sessions a relay allows when it refuses more, instead of failing the mails that wanted one", async () => {
    const s = await scriptedServer(() => "accept", 2);
    const p = pool(s.port, { maxConnections: 6 });
    await Promise.all(Array.from({ length: 12 }, (_, i) => p.send(envelope(`capped-${i}@example.com`), raw(`capped-${i}@example.com`))));
    expect(s.delivered).toHaveLength(12);
    expect(s.mostOpen()).toBe(2);
  });

  it("fails the waiting mails together, not one timeout after another, when the relay accepts connections but never greets", async () => {
    // A relay that is down behind its listener: connections open, no greeting ever comes.
    const silent = net.createServer((socket) => socket.on("error", () => {}));
    const sockets = new Set<net.Socket>();
    silent.on("connection", (socket) => {
      sockets.add(socket);
      socket.once("close", () => sockets.delete(socket));
    });
    silent.listen(0, "127.0.0.1");
    await once(silent, "listening");
    cleanups.push(() => {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => silent.close(() => resolve()));
    });
    const p = pool((silent.address() as AddressInfo).port, { maxConnections: 4, connectionTimeoutMs: 250, greetingTimeoutMs: 250 });
    const started = Date.now();
    const outcomes = await Promise.allSettled(Array.from({ length: 16 }, (_, i) => p.send(envelope(`silent-${i}@example.com`), raw(`silent-${i}@example.com`))));
    expect(outcomes.every((o) => o.status === "rejected")).toBe(true);
    // One greeting timeout after another would take 16 × 250 ms; a few rounds of four at once take about 1 s.
    expect(Date.now() - started).toBeLessThan(2_500);
  });

  it("logs in with the credentials it was given where the server asks for AUTH, and a refused login fails the mail with the server's code", async () => {
    const s = await server({
      authOptional: false,
      allowInsecureAuth: true,
      onAuth(auth, _session, callback) {
        if (auth.username === "mailer" && auth.password === "p@ss:word") return callback(null, { user: "mailer" });
        callback(Object.assign(new Error("bad credentials"), { responseCode: 535 }));
      },
    });
    await pool(s.port, { auth: { user: "mailer", pass: "p@ss:word" } }).send(envelope("auth@example.com"), raw("auth@example.com"));
    expect(s.received).toEqual(["auth@example.com"]);

    const refused = pool(s.port, { auth: { user: "mailer", pass: "wrong" } }).send(envelope("no@example.com"), raw("no@example.com"));
    await expect(refused).rejects.toSatisfy((err: unknown) => smtpResponseCode(err) === 535);
  });

  it("replaces a session the server closed while it was idle instead of failing the next mail on it", async () => {
    const s = await server();
    const p = pool(s.port, { maxConnections: 1 });
    await p.send(envelope("first@example.com"), raw("first@example.com"));
    const closing = [...s.sockets].map((socket) => once(socket, "close"));
    for (const socket of s.sockets) socket.destroy();
    await Promise.all(closing);
    await new Promise((resolve) => setTimeout(resolve, 50));

    await p.send(envelope("second@example.com"), raw("second@example.com"));
    expect(s.received).toEqual(["first@example.com", "second@example.com"]);
  });

  it("fails a mail at once when its session drops mid-mail, and sends the next on a new session", async () => {
    const s = await scriptedServer((session) => (session === 0 ? "drop" : "accept"));
    const p = pool(s.port, { maxConnections: 1 });
    await expect(p.send(envelope("lost@example.com"), raw("lost@example.com"))).rejects.toThrow();
    await p.send(envelope("next@example.com"), raw("next@example.com"));
    expect(s.delivered).toEqual(["next@example.com"]);
    expect(s.sessions()).toBe(2);
  });

  it("fails a mail whose server stops answering once the socket timeout runs out, freeing its slot", async () => {
    const s = await scriptedServer((session) => (session === 0 ? "hang" : "accept"));
    const p = pool(s.port, { maxConnections: 1, socketTimeoutMs: 300 });
    const started = Date.now();
    await expect(p.send(envelope("stuck@example.com"), raw("stuck@example.com"))).rejects.toThrow();
    expect(Date.now() - started).toBeLessThan(3_000);
    await p.send(envelope("after@example.com"), raw("after@example.com"));
    expect(s.delivered).toEqual(["after@example.com"]);
  });

  it("reports a rejected mail with the server's reply code and goes on delivering", async () => {
    const smtp = await startSmtp();
    cleanups.push(() => smtp.close());
    smtp.reject = ({ to }) => (to === "bounce@example.com" ? 550 : undefined);
    const p = pool(Number(new URL(smtp.url).port));
    await expect(p.send(envelope("bounce@example.com"), raw("bounce@example.com"))).rejects.toSatisfy((err: unknown) => smtpResponseCode(err) === 550);
    await p.send(envelope("fine@example.com"), raw("fine@example.com"));
    expect((await smtp.waitFor(1)).map((m) => m.to)).toEqual(["fine@example.com"]);
  });

  it("sends a message and its ending dot in one write: four writes per mail (MAIL FROM, RCPT TO, DATA, the message)", async () => {
    const s = await scriptedServer(() => "accept");
    const flushes = await writesForFiveMails(s.port);
    expect(s.delivered).toHaveLength(6);
    expect(flushes).toBe(5 * 4);
  });

  it("sends a mail's envelope in one write where the server offers PIPELINING: two writes per mail (MAIL FROM with RCPT TO and DATA, the message)", async () => {
    const s = await scriptedServer(() => "accept", Number.POSITIVE_INFINITY, { pipelining: true });
    const flushes = await writesForFiveMails(s.port);
    expect(s.delivered).toEqual(["warm@example.com", ...Array.from({ length: 5 }, (_, n) => `m${n}@example.com`)]);
    expect(flushes).toBe(5 * 2);
    expect(s.sessions()).toBe(1);
  });

  it.each([
    ["MAIL", "550 sender refused", 550],
    ["RCPT", "550 no such user", 550],
    ["DATA", "451 try again later", 451],
  ] as const)("fails a pipelined mail refused at %s with the server's code, sends nothing of it, and delivers the next on a new session", async (step, reply, code) => {
    const s = await scriptedServer(() => "accept", Number.POSITIVE_INFINITY, {
      pipelining: true,
      refuse: (session, verb) => (session === 0 && verb === step ? reply : undefined),
    });
    const p = pool(s.port, { maxConnections: 1 });
    await expect(p.send(envelope("refused@example.com"), raw("refused@example.com"))).rejects.toSatisfy((err: unknown) => smtpResponseCode(err) === code);
    await p.send(envelope("next@example.com"), raw("next@example.com"));
    expect(s.delivered).toEqual(["next@example.com"]);
    expect(s.sessions()).toBe(2);
  });

  it("once closed ends the mail under way, fails the one waiting for a session and refuses new ones", async () => {
    const s = await scriptedServer(() => "hang");
    const p = pool(s.port, { maxConnections: 1, socketTimeoutMs: 10_000 });
    const first = p.send(envelope("a@example.com"), raw("a@example.com"));
    const waiting = p.send(envelope("b@example.com"), raw("b@example.com"));
    await new Promise((resolve) => setTimeout(resolve, 100));
    p.close();
    await expect(first).rejects.toThrow();
    await expect(waiting).rejects.toThrow(/closed/);
    await expect(p.send(envelope("c@example.com"), raw("c@example.com"))).rejects.toThrow(/closed/);
  });
});

/** A mail's outcome, readable while it is still under way: undefined until it settles, then its error or "sent". */
function outcomeOf(sending: Promise<void>): () => Error | "sent" | undefined {
  let outcome: Error | "sent" | undefined;
  sending.then(
    () => (outcome = "sent"),
    (err: Error) => (outcome = err),
  );
  return () => outcome;
}

/** The mail was given up at its deadline: the pool's own error, not a socket timeout or a refusal. */
const givenUp = (outcome: Error | "sent" | undefined) =>
  outcome instanceof Error && /deadline/.test(outcome.message) && (outcome as { code?: unknown }).code === "ETIMEDOUT";

// Generous: each deadline below is half a second away, and nothing else ends
// the mail sooner than 20 s (a socket or greeting timeout), so a mail that
// has settled within this bound was given up by its deadline.
const SETTLES = { timeout: 10_000 };

describe("SmtpPool, each mail's deadline", () => {
  it("gives up a mail the relay has not answered when its deadline passes: the session is reset before the relay answers, and the next mail goes out on a new one", async () => {
    let answer: (() => void) | undefined;
    let heldSession = "";
    const s = await server({
      onData(stream, session, callback) {
        stream.resume();
        stream.on("end", () => {
          const to = session.envelope.rcptTo.map((r) => r.address).join(",");
          if (heldSession !== "") {
            s.received.push(to);
            return callback();
          }
          // A slow relay: the reply comes when the test says. It accepts the
          // mail then only if its client is still there.
          heldSession = session.id;
          answer = () => {
            if (!s.closed.has(session.id)) s.received.push(to);
            callback();
          };
        });
      },
    });
    const p = pool(s.port, { maxConnections: 1, socketTimeoutMs: 20_000 });
    const slow = outcomeOf(p.send(envelope("slow@example.com"), raw("slow@example.com"), Date.now() + 500));
    await expect.poll(slow, SETTLES).toBeDefined();
    expect(givenUp(slow())).toBe(true);
    // Closed by the pool, not by the relay, which is still holding its reply.
    await expect.poll(() => s.closed.has(heldSession), SETTLES).toBe(true);
    answer!();
    await p.send(envelope("next@example.com"), raw("next@example.com"));
    expect(s.received).toEqual(["next@example.com"]);
    expect(s.closed.size).toBe(1);
  });

  it("gives up a mail waiting for a session when its deadline passes, leaving the session and the mail on it alone", async () => {
    let answer: (() => void) | undefined;
    const s = await server({
      onData(stream, session, callback) {
        stream.resume();
        stream.on("end", () => {
          const to = session.envelope.rcptTo.map((r) => r.address).join(",");
          const accept = () => {
            s.received.push(to);
            callback();
          };
          if (to === "first@example.com") answer = accept;
          else accept();
        });
      },
    });
    const p = pool(s.port, { maxConnections: 1, socketTimeoutMs: 20_000 });
    const first = outcomeOf(p.send(envelope("first@example.com"), raw("first@example.com")));
    await expect.poll(() => answer, SETTLES).toBeDefined();
    const queued = outcomeOf(p.send(envelope("queued@example.com"), raw("queued@example.com"), Date.now() + 500));
    await expect.poll(queued, SETTLES).toBeDefined();
    expect(givenUp(queued())).toBe(true);
    expect(first()).toBeUndefined();
    answer!();
    await expect.poll(first, SETTLES).toBe("sent");
    // The mail that left the queue took nothing with it: the one session serves the next mail.
    await p.send(envelope("third@example.com"), raw("third@example.com"));
    expect(s.received).toEqual(["first@example.com", "third@example.com"]);
    expect(s.closed.size).toBe(0);
    expect(s.mostOpen()).toBe(1);
  });

  it("gives up a mail whose session is still being opened when its deadline passes; the session, once open, serves the next mail", async () => {
    let greet: (() => void) | undefined;
    let connections = 0;
    const s = await server({
      // The relay is slow to greet its first client.
      onConnect(_session, callback) {
        if (++connections === 1) greet = () => callback();
        else callback();
      },
    });
    const p = pool(s.port, { maxConnections: 1, greetingTimeoutMs: 20_000, socketTimeoutMs: 20_000 });
    const early = outcomeOf(p.send(envelope("early@example.com"), raw("early@example.com"), Date.now() + 500));
    await expect.poll(early, SETTLES).toBeDefined();
    expect(givenUp(early())).toBe(true);
    greet!();
    await p.send(envelope("later@example.com"), raw("later@example.com"));
    expect(s.received).toEqual(["later@example.com"]);
    expect(connections).toBe(1);
  });

  it("refuses a mail already past its deadline at once, opening nothing", async () => {
    const s = await server();
    const p = pool(s.port);
    const late = outcomeOf(p.send(envelope("late@example.com"), raw("late@example.com"), Date.now() - 1));
    await expect.poll(late, SETTLES).toBeDefined();
    expect(givenUp(late())).toBe(true);
    expect(s.mostOpen()).toBe(0);
  });
});
