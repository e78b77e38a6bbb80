// Legacy businesses by number, remembered briefly so the hot path of a
// legacy send stays one database round trip. Unknown numbers are remembered
// for less time, so a newly added business is found soon.
import type { Clock } from "./clock.js";
import type { Tenant, TenantStore } from "./tenants.js";

export class BusinessDirectory {
  private readonly cache = new Map<string, { tenant: Tenant | undefined; expiresAt: number }>();

  constructor(
    private readonly store: TenantStore,
    private readonly clock: Clock,
    private readonly ttlMs = 30_000,
    private readonly missTtlMs = 2_000,
    private readonly capacity = 10_000,
  ) {}

  /** Forgets a business (it changed), so the next send reads it again. */
  forget(businessId: string): void {
    this.cache.delete(businessId);
  }

  async find(businessId: string): Promise<Tenant | undefined> {
    const now = this.clock.now();
    const hit = this.cache.get(businessId);
    if (hit && hit.expiresAt > now) return hit.tenant;
    if (hit) this.cache.delete(businessId);
    const tenant = await this.store.business(businessId);
    if (this.cache.size >= this.capacity) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(businessId, { tenant, expiresAt: now + (tenant ? this.ttlMs : this.missTtlMs) });
    return tenant;
  }
}
