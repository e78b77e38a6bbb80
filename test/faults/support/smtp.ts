// A real SMTP server (smtp-server) on 127.0.0.1 that the service processes
// deliver to over TCP, with the faults the tests need: it can go away and
// come back on the same port (stop/start), answer DATA with a chosen reply
// code per recipient, and take its time before answering DATA. It counts
// every DATA it saw and every mail it accepted, by recipient and Message-ID.
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { SMTPServer } from "smtp-server";

export interface AcceptedMail {
  readonly to: string;
  readonly messageId: string;
  /** Date.now() when the server accepted it. */
  readonly at: number;
  /** Which of the server's ports it came in on. */
  readonly port: number;
  /** False when the client had gone before the 250 reply could be sent. */
  readonly clientStillThere: boolean;
  readonly subject: string;
}

export interface DataAttempt {
  readonly to: string;
  readonly messageId: string;
  readonly at: number;
  /** The reply code the server answered with (250 accepted). */
  readonly reply: number;
}

export interface FaultSmtp {
  /** The first port (smtp://127.0.0.1:<port>). */
  readonly port: number;
  readonly ports: readonly number[];
  readonly url: string;
  urlFor(index: number): string;
  readonly accepted: AcceptedMail[];
  readonly attempts: DataAttempt[];
  /** DATA commands whose reply is still being delayed. */
  inProgress(): number;
  /** The reply code for a DATA (undefined: accept). `attempt` counts DATA for this recipient, from 1. */
  reject: ((mail: { to: string; attempt: number }) => number | undefined) | undefined;
  /** Milliseconds to wait before answering DATA (undefined: at once). */
  delay: ((mail: { to: string }) => number) | undefined;
  acceptedTo(address: string): AcceptedMail[];
  /** Message-IDs accepted more than once, with their counts. */
  duplicates(): Map<string, number>;
  /** Stops listening and drops every open connection: connections are refused until start(). */
  stop(): Promise<void>;
  /** Listens again, on the same port(s). */
  start(): Promise<void>;
  close(): Promise<void>;
}

/** One server per port in `ports` (0: any free one), all feeding the same counters. */
export async function startFaultSmtp(options: { ports?: number[] } = {}): Promise<FaultSmtp> {
  const accepted: AcceptedMail[] = [];
  const attempts: DataAttempt[] = [];
  const perRecipient = new Map<string, number>();
  let pending = 0;
  let servers: SMTPServer[] = [];
  let ports = options.ports ?? [0];

  const state: FaultSmtp = {
    port: 0,
    ports: [],
    url: "",
    urlFor: (i) => `smtp://127.0.0.1:${ports[i]}`,
    accepted,
    attempts,
    inProgress: () => pending,
    reject: undefined,
    delay: undefined,
    acceptedTo: (address) => accepted.filter((m) => m.to === address),
    duplicates() {
      const counts = new Map<string, number>();
      for (const m of accepted) counts.set(m.messageId, (counts.get(m.messageId) ?? 0) + 1);
      return new Map([...counts].filter(([, n]) => n > 1));
    },
    async stop() {
      const closing = servers;
      servers = [];
      await Promise.all(
        closing.map(async (server) => {
          const done = new Promise<void>((resolve) => server.close(() => resolve()));
          // Drop open connections now rather than after a grace period.
          for (const connection of (server as unknown as { connections: Set<{ _socket?: { destroy(): void } }> }).connections) {
            connection._socket?.destroy();
          }
          await done;
        }),
      );
    },
    async start() {
      servers = await Promise.all(ports.map((port) => listen(port)));
      ports = servers.map((s) => (s.server.address() as AddressInfo).port);
    },
    async close() {
      await state.stop();
    },
  };

  function listen(port: number): Promise<SMTPServer> {
    const server = new SMTPServer({
      authOptional: true,
      disabledCommands: ["STARTTLS", "AUTH"],
      logger: false,
      closeTimeout: 100,
      size: 1024 * 1024,
      onData(stream, session, callback) {
        const chunks: Buffer[] = [];
        stream.on("data", (c: Buffer) => chunks.push(c));
        stream.on("end", () => {
          const raw = Buffer.concat(chunks).toString("utf8");
          const head = raw.slice(0, Math.max(0, raw.indexOf("\r\n\r\n")) || raw.length);
          const messageId = /^Message-ID:\s*(<[^>\r\n]+>)/im.exec(head)?.[1] ?? "";
          const subject = /^Subject:\s*(.*)$/im.exec(head)?.[1] ?? "";
          const to = session.envelope.rcptTo.map((r) => r.address).join(",");
          const attempt = (perRecipient.get(to) ?? 0) + 1;
          perRecipient.set(to, attempt);
          const wait = state.delay?.({ to }) ?? 0;
          pending += 1;
          let clientGone = false;
          const finish = () => {
            pending -= 1;
            const code = state.reject?.({ to, attempt });
            attempts.push({ to, messageId, at: Date.now(), reply: code ?? 250 });
            if (code !== undefined) {
              callback(Object.assign(new Error(`${code} rejected by the test server`), { responseCode: code }));
              return;
            }
            accepted.push({ to, messageId, at: Date.now(), port: localPort, clientStillThere: !clientGone, subject });
            callback();
          };
          // Watch the client only while this mail is held (a pooled
          // connection carries many mails, so the listener must not stay).
          const conn = connectionOf(server, session.id);
          const gone = () => (clientGone = true);
          conn?.once("close", gone);
          const done = () => {
            conn?.off("close", gone);
            finish();
          };
          if (wait > 0) setTimeout(done, wait).unref();
          else done();
        });
      },
    });
    let localPort = port;
    server.on("error", () => {});
    server.listen(port, "127.0.0.1");
    return once(server.server, "listening").then(() => {
      localPort = (server.server.address() as AddressInfo).port;
      return server;
    });
  }

  await state.start();
  const mutable = state as { -readonly [K in keyof FaultSmtp]: FaultSmtp[K] };
  mutable.port = ports[0]!;
  mutable.ports = [...ports];
  mutable.url = `smtp://127.0.0.1:${ports[0]}`;
  return state;
}

/** The connection object of a session, to learn when its client goes away. */
function connectionOf(
  server: SMTPServer,
  sessionId: string,
): { once(event: "close", fn: () => void): void; off(event: "close", fn: () => void): void } | undefined {
  type Socket = { once(e: string, fn: () => void): void; off(e: string, fn: () => void): void };
  const connections = (server as unknown as { connections: Set<{ id: string; _socket?: Socket }> }).connections;
  for (const c of connections) {
    const socket = c._socket;
    if (c.id === sessionId && socket) return { once: (_e, fn) => socket.once("close", fn), off: (_e, fn) => socket.off("close", fn) };
  }
  return undefined;
}
