// The mail side of the composition root: the mailer (SMTP or the dev
// mailbox), the outbox worker, send admission and the metrics they feed.
import path from "node:path";
import type { Logger } from "pino";
import type { Config } from "../config.js";
import { systemClock } from "../domain/clock.js";
import type { Secrets } from "../domain/secrets.js";
import { SendAdmission } from "../domain/send-admission.js";
import { createSmtpMailer, DevMailbox, type Mailer } from "../mail/mailer.js";
import { OutboxWorker } from "../mail/outbox-worker.js";
import { monitorLoopDelay, type LoopDelayMonitor } from "../observability/loop-delay.js";
import { Metrics } from "../observability/metrics.js";
import type { Db } from "../storage/db.js";
import { PgOutboxStore } from "../storage/outbox-store.js";

export interface Delivery {
  /** Set when no SMTP server is configured. */
  readonly devMailbox: DevMailbox | undefined;
  readonly mailer: Mailer;
  readonly metrics: Metrics;
  readonly admission: SendAdmission;
  readonly worker: OutboxWorker;
  /** What admission reads of this process's event loop; stopped at shutdown. */
  readonly loopDelay: LoopDelayMonitor;
}

export function wireDelivery(config: Config, db: Db, secrets: Secrets, logger: Logger, embedded: boolean): Delivery {
  // In embedded mode the dev mailbox is kept in DATA_DIR, so a restart keeps it.
  const devMailbox = config.devMailbox
    ? new DevMailbox(logger, embedded ? { file: path.join(config.dataDir, "dev-mailbox.json") } : {})
    : undefined;
  const mailer: Mailer = devMailbox ?? createSmtpMailer(config.smtpUrl!, config.outbox.concurrency);
  const outbox = new PgOutboxStore(db);
  const metrics = new Metrics({ outboxBacklog: () => outbox.backlog(), pool: db });
  const loopDelay = monitorLoopDelay();
  const admission = new SendAdmission(config.admission, { count: async () => (await outbox.backlog()).depth }, systemClock, loopDelay);
  const worker = new OutboxWorker(outbox, mailer, secrets, logger, {
    // Every row that leaves the queue (delivered, failed, expired) drains the backlog admission weighs.
    observer: {
      delivered: (acceptedAt) => {
        metrics.delivered(acceptedAt);
        admission.delivered();
      },
      attemptFailed: (result) => {
        metrics.attemptFailed(result);
        if (result !== "retry") admission.delivered();
      },
    },
    concurrency: config.outbox.concurrency,
    pollMs: config.outbox.pollMs,
    maxAttempts: config.outbox.maxAttempts,
    defaultFrom: config.mailFrom,
    // A dev mailbox on a database others may share (UNSAFE_DEV_MAILBOX)
    // shows only what was sent through it; the embedded database is ours alone.
    ownMailOnly: devMailbox !== undefined && !embedded,
  });
  return { devMailbox, mailer, metrics, admission, worker, loopDelay };
}
