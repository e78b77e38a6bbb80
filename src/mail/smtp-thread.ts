// The SMTP thread's entry: runs the SMTP sessions (an SmtpPool) for
// ThreadedSmtpPool on the main thread (threaded-smtp-pool.ts). The main
// thread hands over each mail as bytes; this thread speaks SMTP and answers
// with the outcome.
import { parentPort, workerData } from "node:worker_threads";
import { SmtpPool, type SmtpPoolOptions } from "./smtp-pool.js";
import type { ThreadReply, ThreadRequest } from "./threaded-smtp-pool.js";

const port = parentPort;
if (!port) throw new Error("smtp-thread.ts runs as a worker thread of ThreadedSmtpPool");
const pool = new SmtpPool(workerData as SmtpPoolOptions);

port.on("message", (request: ThreadRequest) => {
  if (request.kind === "close") {
    pool.close();
    // The thread ends once the closed sessions' sockets are gone.
    port.unref();
    return;
  }
  const raw = Buffer.from(request.raw.buffer, request.raw.byteOffset, request.raw.byteLength);
  pool.send(request.envelope, raw).then(
    () => port.postMessage({ id: request.id } satisfies ThreadReply),
    (err: unknown) => port.postMessage({ id: request.id, error: failure(err) } satisfies ThreadReply),
  );
});

/** What the main thread needs of a failure: its message and the codes deliveryCause and smtpResponseCode read. */
function failure(err: unknown): NonNullable<ThreadReply["error"]> {
  const e = (err ?? {}) as { message?: unknown; name?: unknown; code?: unknown; responseCode?: unknown };
  return {
    message: typeof e.message === "string" ? e.message : String(err),
    name: typeof e.name === "string" ? e.name : "Error",
    ...(typeof e.code === "string" ? { code: e.code } : {}),
    ...(typeof e.responseCode === "number" ? { responseCode: e.responseCode } : {}),
  };
}
