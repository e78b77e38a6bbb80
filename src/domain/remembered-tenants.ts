// Tenants by the name a public route gives (a legacy business number, a
// project id), remembered briefly so the hot path stays one database round
// trip: a known name for a while, an unknown one for less, so a new tenant
// is found soon. A name not remembered is charged to the asking client's
// lookup budget before the database is asked.
import type { Clock } from "./clock.js";
import type { LookupBudget } from "./lookup-budget.js";
import type { Tenant } from "./tenants.js";
import { TtlCache } from "./ttl-cache.js";

export interface DirectoryOptions {
  /** How long a known tenant is remembered (30 s). */
  readonly ttlMs?: number;
  /** How long an unknown name is remembered (2 s). */
  readonly missTtlMs?: number;
  /** Names remembered at most (10,000). */
  readonly capacity?: number;
  /** Charged for every name not remembered; none: lookups are free. */
  readonly budget?: LookupBudget;
}

export class RememberedTenants {
  private readonly cache: TtlCache<string, { tenant: Tenant | undefined }>;
  private readonly ttlMs: number;
  private readonly missTtlMs: number;
  private readonly budget: LookupBudget | undefined;

  constructor(
    clock: Clock,
    private readonly load: (name: string) => Promise<Tenant | undefined>,
    options: DirectoryOptions = {},
  ) {
    this.ttlMs = options.ttlMs ?? 30_000;
    this.missTtlMs = options.missTtlMs ?? 2_000;
    this.budget = options.budget;
    this.cache = new TtlCache(clock, options.capacity ?? 10_000);
  }

  forget(name: string): void {
    this.cache.delete(name);
  }

  /** The tenant, if any; `client` (the asker's IP) pays for a database lookup. */
  async find(name: string, client: string | undefined): Promise<Tenant | undefined> {
    const hit = this.cache.get(name);
    if (hit) return hit.tenant;
    this.budget?.charge(client);
    const tenant = await this.load(name);
    this.cache.set(name, { tenant }, tenant ? this.ttlMs : this.missTtlMs);
    return tenant;
  }
}
