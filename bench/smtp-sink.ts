// The SMTP sink: a real SMTP server (smtp-server) in the bench process that
// accepts every mail, keeps no body, and records when each recipient's mail
// arrived (wall clock, ms with sub-ms precision) so a send's acceptance can be
// matched to its delivery by recipient.
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { SMTPServer } from "smtp-server";
import { nowMs } from "./stats.js";

export interface SmtpSink {
  readonly url: string;
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


export async function startSmtpSink(): Promise<SmtpSink> {
  const arrivals = new Map<string, number>();
  const times: number[] = [];
  let connections = 0;
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS", "AUTH"],
    logger: false,
    // No reverse DNS of the client (127.0.0.1): the sink answers at once.
    disableReverseLookup: true,
    onConnect(_session, callback) {
      connections++;
      callback();
    },
    // The service's pooled transport reconnects on its own; no idle cut.
    socketTimeout: 120_000,
    onData(stream, session, callback) {
      stream.on("data", () => {});
      stream.on("end", () => {
        const at = nowMs();
        times.push(at);
        for (const r of session.envelope.rcptTo) {
          if (!arrivals.has(r.address)) arrivals.set(r.address, at);
        }
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
    count: () => times.length,
    connections: () => connections,
    arrivals,
    times,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
