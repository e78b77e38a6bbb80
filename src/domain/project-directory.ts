// Projects by id for the public routes that name one without proving it (a
// project's JWKS); see RememberedTenants: remembered, and a miss charged to
// the asker.
import type { Clock } from "./clock.js";
import { isProjectId } from "./ids.js";
import { type DirectoryOptions, RememberedTenants } from "./remembered-tenants.js";
import type { Tenant, TenantStore } from "./tenants.js";

export class ProjectDirectory {
  private readonly remembered: RememberedTenants;

  constructor(store: TenantStore, clock: Clock, options: DirectoryOptions = {}) {
    this.remembered = new RememberedTenants(clock, async (projectId) => (await store.projectCredentials(projectId))?.tenant, options);
  }

  /** Forgets a project (it changed). */
  forget(projectId: string): void {
    this.remembered.forget(projectId);
  }

  /** The project, if any; an id that cannot be one costs nothing. */
  async find(projectId: string, client?: string): Promise<Tenant | undefined> {
    return isProjectId(projectId) ? this.remembered.find(projectId, client) : undefined;
  }
}
