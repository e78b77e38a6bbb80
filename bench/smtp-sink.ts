// The SMTP sink: a real SMTP server that accepts every mail, keeps no body,
// and records when each recipient's mail arrived (ms on nowMs()'s clock,
// sub-ms precision) so a send's acceptance can be matched to its delivery by
// recipient. It is smtpsink.c, built by cgen.ts, when given its path: a
// process of its own that costs a fraction of the CPU smtp-server costs in
// the bench's process. Otherwise it is smtp-server here.
import { spawn } from "node:child_process";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { createInterface } from "node:readline";
import { SMTPServer } from "smtp-server";
import { nowMs } from "./stats.js";

export interface SmtpSink {
  readonly url: string;
  /** What receives the mail, for the report. */
  readonly kind: string;
  /** Mails received so far. */
  count(): number;
  /** SMTP connections accepted so far. */
  connections(): number;
  /** Arrival time (epoch ms) of the first mail to each recipient. */
  readonly arrivals: Map<string, number>;
  /** Arrival times in order, for rates over a time window. */
  readonly times: number[];
  close(): Promise<void>;
}

/** What both sinks record, and the part of SmtpSink made of it. */
function recorder() {
  const arrivals = new Map<string, number>();
  const times: number[] = [];
  let connections = 0;
  return {
    connected: () => void connections++,
    /** A mail to these recipients arrived at `at`: only the first mail to each counts as its arrival. */
    arrived(recipients: readonly string[], at: number) {
      times.push(at);
      for (const r of recipients) if (!arrivals.has(r)) arrivals.set(r, at);
    },
    view: { count: () => times.length, connections: () => connections, arrivals, times },
  };
}

/** `binary`: the built smtpsink, or undefined for smtp-server in this process. */
export async function startSmtpSink(binary?: string): Promise<SmtpSink> {
  return binary ? startCSink(binary) : startNodeSink();
}

async function startCSink(binary: string): Promise<SmtpSink> {
  const record = recorder();
  // stdin stays open: the sink exits when it closes (this process went away).
  const child = spawn(binary, [], { stdio: ["pipe", "pipe", "inherit"] });
  child.stdin!.on("error", () => {});
  // It stamps arrivals with CLOCK_MONOTONIC (ms), which process.hrtime reads.
  const monoToNowMs = nowMs() - Number(process.hrtime.bigint()) / 1e6;
  let listening: (port: number) => void;
  const port = new Promise<number>((resolve) => (listening = resolve));
  createInterface({ input: child.stdout! }).on("line", (line) => {
    const f = line.split("\t");
    if (f[0] === "M") record.arrived([f[2]!], Number(f[1]) + monoToNowMs);
    else if (f[0] === "C") record.connected();
    else if (f[0] === "L") listening(Number(f[1]));
  });
  const exited = once(child, "exit");
  const started = await Promise.race([port, exited.then(() => undefined)]);
  if (started === undefined) throw new Error("smtpsink exited before it listened");
  return {
    url: `smtp://127.0.0.1:${started}`,
    kind: "smtpsink (C)",
    ...record.view,
    close: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        await exited;
      }
    },
  };
}

async function startNodeSink(): Promise<SmtpSink> {
  const record = recorder();
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS", "AUTH"],
    logger: false,
    // No reverse DNS of the client (127.0.0.1): the sink answers at once.
    disableReverseLookup: true,
    onConnect(_session, callback) {
      record.connected();
      callback();
    },
    // The service's pooled transport reconnects on its own; no idle cut.
    socketTimeout: 120_000,
    onData(stream, session, callback) {
      stream.on("data", () => {});
      stream.on("end", () => {
        record.arrived(
          session.envelope.rcptTo.map((r) => r.address),
          nowMs(),
        );
        callback();
      });
    },
  });
  server.on("error", () => {});
  server.listen(0, "127.0.0.1");
  await once(server.server, "listening");
  const { port } = server.server.address() as AddressInfo;
  return {
    url: `smtp://127.0.0.1:${port}`,
    kind: "smtp-server (node, in the bench process)",
    ...record.view,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
