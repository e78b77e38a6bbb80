// The SMTP thread's entry: runs the SMTP sessions (an SmtpPool) for
// ThreadedSmtpPool on the main thread (threaded-smtp-pool.ts). The main
// thread hands over mails as bytes; this thread speaks SMTP and answers
// with their outcomes, those of one turn of its loop in one message.
import { parentPort, workerData } from "node:worker_threads";
import { SmtpPool, type SmtpPoolOptions } from "./smtp-pool.js";
import type { MailOutcome, ThreadReply, ThreadRequest } from "./threaded-smtp-pool.js";

const port = parentPort;
if (!port) throw new Error("smtp-thread.ts runs as a worker thread of ThreadedSmtpPool");
const pool = new SmtpPool(workerData as SmtpPoolOptions);

let outcomes: MailOutcome[] | undefined;
function answer(outcome: MailOutcome): void {
  if (outcomes === undefined) {
    outcomes = [];
    setImmediate(() => {
      const reply: ThreadReply = { outcomes: outcomes! };
      outcomes = undefined;
      port!.postMessage(reply);
    });
  }
  outcomes.push(outcome);
}

port.on("message", (request: ThreadRequest) => {
  if (request.kind === "close") {
    pool.close();
    // The thread ends once the closed sessions' sockets are gone.
    port.unref();
    return;
  }
  for (const mail of request.mails) {
    const raw = Buffer.from(mail.raw.buffer, mail.raw.byteOffset, mail.raw.byteLength);
    pool.send(mail.envelope, raw, mail.deadline).then(
      () => answer({ id: mail.id }),
      (err: unknown) => answer({ id: mail.id, error: failure(err) }),
    );
  }
});

/** What the main thread needs of a failure: its message and the codes deliveryCause and smtpResponseCode read. */
function failure(err: unknown): NonNullable<MailOutcome["error"]> {
  const e = (err ?? {}) as { message?: unknown; name?: unknown; code?: unknown; responseCode?: unknown };
  return {
    message: typeof e.message === "string" ? e.message : String(err),
    name: typeof e.name === "string" ? e.name : "Error",
    ...(typeof e.code === "string" ? { code: e.code } : {}),
    ...(typeof e.responseCode === "number" ? { responseCode: e.responseCode } : {}),
  };
}
