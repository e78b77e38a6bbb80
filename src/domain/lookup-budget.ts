// How often one client may make the service look up a tenant it has not
// seen lately. The public routes name a tenant before anything else is
// checked (a legacy businessId, a project's JWKS), and a name nobody asked
// for recently is a database query: without a budget, a stranger cycling
// through made-up names gets one query per request, as fast as the service
// answers. Names already remembered (see BusinessDirectory,
// ProjectDirectory) cost nothing, so callers that use real tenants never
// meet the budget. It guards this instance's database connections, so it is
// kept in memory, per instance.
import { clientKey } from "./client-key.js";
import type { Clock } from "./clock.js";
import { DomainError } from "./errors.js";
import { LocalThrottle } from "./local-throttle.js";
import type { RateLimit } from "./rate-limit-policy.js";

export class LookupBudget {
  private readonly throttle: LocalThrottle;

  constructor(clock: Clock, limit: RateLimit) {
    this.throttle = new LocalThrottle(limit, clock);
  }

  /** Charges one lookup to the client (its IP, if known); rate_limited when over. */
  charge(client: string | undefined): void {
    const wait = this.throttle.take(client === undefined ? "unknown" : clientKey(client));
    if (wait !== undefined) {
      throw new DomainError("rate_limited", "Too many lookups of unknown tenants: wait before trying again.", { retryAfterMs: wait, limit: "lookup" });
    }
  }
}
