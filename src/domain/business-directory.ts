// Legacy businesses by number, for the legacy routes and a business's JWKS
// (see RememberedTenants: remembered, and a miss charged to the asker).
import type { Clock } from "./clock.js";
import { invalidFields } from "./errors.js";
import { type DirectoryOptions, RememberedTenants } from "./remembered-tenants.js";
import type { Tenant, TenantStore } from "./tenants.js";

export class BusinessDirectory {
  private readonly remembered: RememberedTenants;

  constructor(store: TenantStore, clock: Clock, options: DirectoryOptions = {}) {
    this.remembered = new RememberedTenants(clock, (businessId) => store.business(businessId), options);
  }

  /** Forgets a business (it changed), so the next send reads it again. */
  forget(businessId: string): void {
    this.remembered.forget(businessId);
  }

  /** The business, if any; `client` (the asker's IP) pays for a database lookup. */
  find(businessId: string, client?: string): Promise<Tenant | undefined> {
    return this.remembered.find(businessId, client);
  }

  /** The business a legacy call names; an unknown one is the caller's bad business_id. */
  async known(businessId: string, client?: string): Promise<Tenant> {
    const business = await this.find(businessId, client);
    if (!business) throw invalidFields([{ field: "business_id", description: "names no known business" }]);
    return business;
  }
}
