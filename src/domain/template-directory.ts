// A tenant's custom templates as sends name them (login_template_id,
// signup_template_id): checked to exist, belong to the tenant and be of the
// right kind, and remembered briefly so a send stays one round trip.
import type { AdminStore } from "./admin-records.js";
import type { Clock } from "./clock.js";
import { DomainError } from "./errors.js";

type Kind = "login" | "signup";

export class TemplateDirectory {
  private readonly cache = new Map<string, { kind: Kind | undefined; expiresAt: number }>();

  constructor(
    private readonly store: Pick<AdminStore, "template">,
    private readonly clock: Clock,
    private readonly ttlMs = 10_000,
  ) {}

  /** Throws a 400 naming the field unless `id` is a template of this tenant and kind. */
  async check(tenantId: string, id: string, kind: Kind): Promise<void> {
    const key = `${tenantId}\0${id}`;
    const now = this.clock.now();
    let hit = this.cache.get(key);
    if (!hit || hit.expiresAt <= now) {
      const template = await this.store.template(tenantId, id);
      hit = { kind: template?.kind, expiresAt: now + this.ttlMs };
      if (this.cache.size >= 10_000) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(key, hit);
    }
    if (hit.kind !== kind) {
      const field = `${kind}_template_id`;
      const description = hit.kind ? `names a ${hit.kind} template, not a ${kind} one` : "names no template of this project";
      throw new DomainError("template_not_found", `${field} ${description}: ${JSON.stringify(id)}`, {
        violations: [{ field, jsonField: kind === "login" ? "loginTemplateId" : "signupTemplateId", description }],
      });
    }
  }

  /** Drops what is remembered of a template (it changed or was deleted). */
  forget(id: string): void {
    for (const key of this.cache.keys()) if (key.endsWith(`\0${id}`)) this.cache.delete(key);
  }
}
