// Each mail's deadline in the SMTP pool (smtp-pool.ts). The outbox worker
// sets it before the lease the mail's row was claimed under ends
// (outbox-worker.ts). When it passes, the mail is given up wherever it is:
// waiting for a session, waiting for a session to open, or being sent. So
// neither a slow relay nor a long queue can keep a delivery going after the
// lease ends, when another instance may claim the row and send it again.
//
// One timer serves every mail, set for the earliest deadline. Mails that
// finish in time only leave the set. When the timer fires it gives up the
// mails that are due and sets itself for the next deadline. Mails are
// mostly handed over in deadline order, so a pool that is keeping up sets
// a new timer about once per lease, not once per mail.
import { performance } from "node:perf_hooks";

/** What a mail fails with when its deadline passes: a temporary failure, which the worker retries. */
export function deadlineError(): Error {
  return Object.assign(new Error("SMTP delivery passed its deadline and was given up"), { code: "ETIMEDOUT" });
}

/** One mail on its way through the pool. */
export class Mail {
  /** The deadline has passed: the mail fails at whatever step it reaches next. */
  late = false;
  /** Ends the wait the mail is in (for a session, for a session to open, for the server) with the given error. */
  giveUp: ((err: Error) => void) | undefined = undefined;

  constructor(
    /** On this thread's monotonic clock (performance.now()); Infinity: no deadline. */
    readonly due: number,
  ) {}

  /** Throws the deadline's error once it has passed. */
  check(): void {
    if (this.late) throw deadlineError();
  }

  /**
   * Waits for `step`, unless the deadline passes first. Then the mail is
   * given up at once, and `step` runs on: when it ends, its result goes to
   * `orphan`, and a failure is dropped, since nothing waits for it.
   */
  until<T>(step: Promise<T>, orphan: (value: T) => void): Promise<T> {
    if (this.due === Number.POSITIVE_INFINITY) return step;
    return new Promise<T>((resolve, reject) => {
      let waiting = true;
      const end = () => {
        waiting = false;
        this.giveUp = undefined;
      };
      this.giveUp = (err) => {
        end();
        step.then(orphan, () => {});
        reject(err);
      };
      step.then(
        (value) => {
          if (!waiting) return;
          end();
          resolve(value);
        },
        (err: unknown) => {
          if (!waiting) return;
          end();
          reject(err);
        },
      );
    });
  }
}

/** The mails under way in one pool, and the timer that gives them up at their deadlines. */
export class MailDeadlines {
  private readonly mails = new Set<Mail>();
  private timer: NodeJS.Timeout | undefined;
  /** When the timer fires (performance.now()); Infinity: no timer is set. */
  private timerAt = Number.POSITIVE_INFINITY;

  /**
   * A mail starting now, due at `deadline`: Date.now() time, the one clock
   * all threads share. From here it is kept on this thread's monotonic
   * clock, so the system's time being set back does not delay it.
   */
  start(deadline: number | undefined): Mail {
    if (deadline === undefined) return new Mail(Number.POSITIVE_INFINITY);
    const now = performance.now();
    const mail = new Mail(now + (deadline - Date.now()));
    if (mail.due <= now) {
      mail.late = true;
      return mail;
    }
    this.mails.add(mail);
    if (mail.due < this.timerAt) this.setTimer(mail.due);
    return mail;
  }

  /** The mail is over (sent, failed or given up). */
  end(mail: Mail): void {
    this.mails.delete(mail);
  }

  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
  }

  private setTimer(at: number): void {
    clearTimeout(this.timer);
    this.timerAt = at;
    // At least 1 ms: the loop's clock is coarser than performance.now(), so
    // a timer can fire a fraction of a millisecond before `at`.
    this.timer = setTimeout(this.fire, Math.max(1, Math.ceil(at - performance.now())));
    // The sockets of the mails under way keep the thread alive, not this timer.
    this.timer.unref();
  }

  private readonly fire = (): void => {
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    const now = performance.now();
    let next = Number.POSITIVE_INFINITY;
    for (const mail of this.mails) {
      if (mail.due > now) {
        next = Math.min(next, mail.due);
        continue;
      }
      this.mails.delete(mail);
      mail.late = true;
      mail.giveUp?.(deadlineError());
    }
    if (next < Number.POSITIVE_INFINITY) this.setTimer(next);
  };
}
