// Admission of sends: under overload, refuse at once rather than queue.
//
// Two things can make an accepted send useless. Its answer can wait behind
// too many sends already in progress (the database pool queues them and every
// caller's latency grows), and its mail can wait behind a backlog that will
// not be delivered before the code expires. So a send is refused (429 with
// Retry-After, Connect resource_exhausted) when this instance already has as
// many sends in progress as it completes within `targetLatencyMs` (Little's
// law: in flight = throughput × latency; never fewer than `minInFlight`, never
// more than `maxInFlight`), or when the queued mail, at the rate mail is being
// delivered, would take longer than the code's life allows. And while the
// instance's own work runs late (its event loop delay is past a bound), no
// more sends are let in than run without waiting (`minInFlight`): a send
// accepted beyond them would wait in that queue with everything else, and so
// would the refusals, which are only "at once" while the loop keeps up.
// The refusal depends on nothing about the address or the tenant's users, so
// it reveals nothing about them.
import type { Clock } from "./clock.js";
import { DomainError } from "./errors.js";

export interface AdmissionLimits {
  /** Sends in progress in this instance beyond which a new one is refused, whatever the throughput. */
  readonly maxInFlight: number;
  /** Sends in progress always allowed, whatever the measured throughput. */
  readonly minInFlight: number;
  /** The answer time the in-flight limit aims at: throughput × this is how many may be in progress. */
  readonly targetLatencyMs: number;
  /** Longest expected wait for delivery a send may be accepted with, ms (also at most half the code's life). */
  readonly maxMailWaitMs: number;
  /** A backlog this small is always accepted, whatever the measured delivery rate (e.g. none yet). */
  readonly backlogFloor: number;
  /** How late the instance's work may run (its recent event loop delay, ms) before only `minInFlight` sends are let in; 0: not looked at. */
  readonly maxLoopDelayMs: number;
}

/** Port: how late this instance runs the work it is given, lately (ms). */
export interface LoopDelay {
  delayMs(): number;
}

/** Port: how much mail is queued and not yet delivered, over all instances. */
export interface QueuedMail {
  count(): Promise<number>;
}

/** How often the queued mail is counted again (between counts, this instance's own sends and deliveries move the estimate). */
export const BACKLOG_SAMPLE_MS = 250;
/** Deliveries are counted in buckets of this length over RATE_WINDOW_MS. */
const BUCKET_MS = 250;
const RATE_WINDOW_MS = 4_000;
const BUCKETS = RATE_WINDOW_MS / BUCKET_MS;

/** Events per second over the last RATE_WINDOW_MS, counted in buckets. */
class RateWindow {
  private readonly counts = new Float64Array(BUCKETS);
  private readonly bucketNo = new Float64Array(BUCKETS).fill(-1);
  constructor(
    private readonly clock: Clock,
    private readonly since: number,
  ) {}

  add(count: number): void {
    const n = Math.floor(this.clock.now() / BUCKET_MS);
    const i = n % BUCKETS;
    if (this.bucketNo[i] !== n) {
      this.bucketNo[i] = n;
      this.counts[i] = 0;
    }
    this.counts[i]! += count;
  }

  perSecond(): number {
    const now = this.clock.now();
    const n = Math.floor(now / BUCKET_MS);
    let sum = 0;
    for (let i = 0; i < BUCKETS; i++) {
      if (this.bucketNo[i]! > n - BUCKETS) sum += this.counts[i]!;
    }
    // The buckets summed span the older ones whole and the current one so far;
    // a young instance has not watched that long yet.
    const spanMs = (BUCKETS - 1) * BUCKET_MS + (now - n * BUCKET_MS);
    const windowMs = Math.max(BUCKET_MS, Math.min(spanMs, now - this.since));
    return (sum / windowMs) * 1000;
  }
}

export class SendAdmission {
  private inFlight = 0;
  /** The last count of queued mail, and what this instance queued and delivered since. */
  private sampled = 0;
  private sampledAt = Number.NEGATIVE_INFINITY;
  private sampling = false;
  private queuedSince = 0;
  private deliveredSince = 0;
  private readonly deliveries: RateWindow;
  private readonly completions: RateWindow;
  private readonly startedAt: number;

  constructor(
    private readonly limits: AdmissionLimits,
    private readonly queued: QueuedMail,
    private readonly clock: Clock,
    private readonly loop?: LoopDelay,
  ) {
    this.startedAt = clock.now();
    this.deliveries = new RateWindow(clock, this.startedAt);
    this.completions = new RateWindow(clock, this.startedAt);
  }

  /**
   * Admits a send whose code lives `ttlMs`, or throws a rate_limited
   * DomainError with a retry delay. Call the returned function when the send
   * is over (committed or failed); `queuedMail` says whether it queued mail.
   */
  admit(ttlMs: number): (queuedMail: boolean) => void {
    const refused = this.refusalFor(ttlMs);
    if (refused) throw refused;
    this.inFlight++;
    let done = false;
    return (queuedMail) => {
      if (done) return;
      done = true;
      this.inFlight--;
      this.completions.add(1);
      if (queuedMail) this.queuedSince++;
    };
  }

  /**
   * The refusal a send arriving now would meet, or undefined: for the
   * transport to ask before it reads a send's body, authenticates it or
   * touches the database, so that under overload the excess is answered at
   * once instead of after the work a refusal throws away. Synchronous and
   * cheap; takes no slot. It refuses only what admit() would refuse at this
   * moment (whatever the code's life), and admit() still decides the rest.
   */
  refusalNow(): DomainError | undefined {
    return this.refusalFor(Number.POSITIVE_INFINITY);
  }

  private refusalFor(ttlMs: number): DomainError | undefined {
    this.refreshBacklog();
    if (this.inFlight >= this.inFlightLimit()) return refusal(1_000);
    // Late: no more in progress than run without waiting for a connection.
    if (this.inFlight >= this.limits.minInFlight && this.runningLate()) return refusal(1_000);
    const backlog = this.backlog();
    if (backlog > this.limits.backlogFloor) {
      const allowedMs = Math.min(this.limits.maxMailWaitMs, ttlMs / 2);
      const rate = this.deliveryRate();
      const waitMs = rate > 0 ? ((backlog + 1) / rate) * 1000 : Number.POSITIVE_INFINITY;
      if (waitMs > allowedMs) {
        // The backlog above what may wait, at the current rate (or one
        // sampling period when nothing has been delivered lately), but never
        // later than the wait allowed: at a crawl the excess could take
        // hours, past the life of any code the caller would then ask for,
        // and the answer should say when asking again is worth it.
        const retryMs = rate > 0 ? ((backlog + 1) / rate) * 1000 - allowedMs : RATE_WINDOW_MS;
        return refusal(Math.min(retryMs, allowedMs));
      }
    }
    return undefined;
  }

  /** Whether the instance's own work runs later than the bound allows. */
  private runningLate(): boolean {
    return this.loop !== undefined && this.limits.maxLoopDelayMs > 0 && this.loop.delayMs() > this.limits.maxLoopDelayMs;
  }

  /** Told for each mail delivered by this instance. */
  delivered(count = 1): void {
    this.deliveries.add(count);
    this.deliveredSince += count;
  }

  /** Mails per second delivered by this instance over the last few seconds. */
  deliveryRate(): number {
    return this.deliveries.perSecond();
  }

  /**
   * How many sends may be in progress: what this instance completes within
   * the target latency at its recent throughput. Before a whole window has
   * been watched the throughput is not known yet, and the maximum applies.
   */
  inFlightLimit(): number {
    const { maxInFlight, minInFlight, targetLatencyMs } = this.limits;
    if (this.clock.now() - this.startedAt < RATE_WINDOW_MS) return maxInFlight;
    const byLittle = Math.ceil((this.completions.perSecond() * targetLatencyMs) / 1000);
    return Math.min(maxInFlight, Math.max(minInFlight, byLittle));
  }

  /** The queued mail as last counted, moved by this instance's own sends and deliveries since. */
  backlog(): number {
    return Math.max(0, this.sampled + this.queuedSince - this.deliveredSince);
  }

  /** Sends this instance has in progress. */
  sendsInFlight(): number {
    return this.inFlight;
  }

  /** Counts the queued mail again when the last count is old; never waits for it. */
  private refreshBacklog(): void {
    const now = this.clock.now();
    if (this.sampling || now - this.sampledAt < BACKLOG_SAMPLE_MS) return;
    this.sampling = true;
    this.sampledAt = now;
    const queuedBefore = this.queuedSince;
    const deliveredBefore = this.deliveredSince;
    this.queued.count().then(
      (n) => {
        this.sampled = n;
        // What happened while counting may or may not be in n; keep it out of the estimate once.
        this.queuedSince -= queuedBefore;
        this.deliveredSince -= deliveredBefore;
        this.sampling = false;
      },
      () => {
        // A failed count keeps the last estimate; the send itself will meet the outage.
        this.sampling = false;
      },
    );
  }
}

/**
 * The refusal for a wait, one per whole second (Retry-After counts whole
 * seconds), each built once: building an Error captures a stack trace, and
 * under overload refusals are most of the requests (6 % of a refusal's CPU
 * went there). The waits are bounded by the mail wait allowed (and a
 * sampling period), so are these.
 */
const refusals = new Map<number, DomainError>();

function refusal(retryAfterMs: number): DomainError {
  const seconds = Math.max(1, Math.ceil(retryAfterMs / 1_000));
  let refused = refusals.get(seconds);
  if (!refused) {
    refused = new DomainError("rate_limited", "The service is at capacity: try again shortly.", Object.freeze({ retryAfterMs: seconds * 1_000, limit: "capacity" }));
    refusals.set(seconds, Object.freeze(refused));
  }
  return refused;
}
