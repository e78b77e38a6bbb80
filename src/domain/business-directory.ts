// Legacy businesses by number, remembered briefly so the hot path of a
// legacy send stays one database round trip. Unknown numbers are remembered
// for less time, so a newly added business is found soon.
import type { Clock } from "./clock.js";
import { invalidFields } from "./errors.js";
import type { Tenant, TenantStore } from "./tenants.js";
import { TtlCache } from "./ttl-cache.js";

export class BusinessDirectory {
  private readonly cache: TtlCache<string, { tenant: Tenant | undefined }>;

  constructor(
    private readonly store: TenantStore,
    clock: Clock,
    private readonly ttlMs = 30_000,
    private readonly missTtlMs = 2_000,
    capacity = 10_000,
  ) {
    this.cache = new TtlCache(clock, capacity);
  }

  /** Forgets a business (it changed), so the next send reads it again. */
  forget(businessId: string): void {
    this.cache.delete(businessId);
  }

  async find(businessId: string): Promise<Tenant | undefined> {
    const hit = this.cache.get(businessId);
    if (hit) return hit.tenant;
    const tenant = await this.store.business(businessId);
    this.cache.set(businessId, { tenant }, tenant ? this.ttlMs : this.missTtlMs);
    return tenant;
  }

  /** The business a legacy call names; an unknown one is the caller's bad business_id. */
  async known(businessId: string): Promise<Tenant> {
    const business = await this.find(businessId);
    if (!business) throw invalidFields([{ field: "business_id", description: "names no known business" }]);
    return business;
  }
}
