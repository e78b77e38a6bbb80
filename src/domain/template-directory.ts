// A tenant's custom templates as sends name them (login_template_id,
// signup_template_id): by id, or by name within the tenant. Checked to exist,
// belong to the tenant and be of the right kind, and remembered briefly so a
// send stays one round trip. A miss says which templates of that kind exist.
import type { AdminStore, TemplateRecord } from "./admin-records.js";
import type { Clock } from "./clock.js";
import { DomainError } from "./errors.js";
import { TtlCache } from "./ttl-cache.js";

type Kind = "login" | "signup";

type Resolution = { readonly id: string } | { readonly problem: string };

export class TemplateDirectory {
  private readonly cache: TtlCache<string, Resolution>;

  constructor(
    private readonly store: Pick<AdminStore, "template" | "listTemplates">,
    clock: Clock,
    private readonly ttlMs = 10_000,
  ) {
    this.cache = new TtlCache(clock, 10_000);
  }

  /**
   * The id of the tenant's `kind` template that `idOrName` names (its id, or
   * else its name); throws a 400 naming the field, and the ids that exist,
   * otherwise.
   */
  async resolve(tenantId: string, idOrName: string, kind: Kind): Promise<string> {
    const key = `${tenantId}\0${kind}\0${idOrName}`;
    let resolution = this.cache.get(key);
    if (!resolution) {
      resolution = await this.lookUp(tenantId, idOrName, kind);
      this.cache.set(key, resolution, this.ttlMs);
    }
    if ("id" in resolution) return resolution.id;
    const field = `${kind}_template_id`;
    const description = resolution.problem;
    throw new DomainError("template_not_found", `${field} ${description}`, {
      violations: [{ field, description }],
    });
  }

  /** Kept for callers that only check: throws unless `id` names a template of this tenant and kind. */
  async check(tenantId: string, id: string, kind: Kind): Promise<void> {
    await this.resolve(tenantId, id, kind);
  }

  /** Drops what is remembered (a template changed or was deleted; names may now mean another one). */
  forget(_id: string): void {
    this.cache.clear();
  }

  private async lookUp(tenantId: string, idOrName: string, kind: Kind): Promise<Resolution> {
    const byId = await this.store.template(tenantId, idOrName);
    if (byId?.kind === kind) return { id: byId.id };
    const all = await this.store.listTemplates(tenantId);
    const named = all.filter((t) => t.name === idOrName && t.kind === kind);
    if (named.length === 1) return { id: named[0]!.id };
    const quoted = JSON.stringify(idOrName);
    const ofKind = all.filter((t) => t.kind === kind);
    if (named.length > 1) return { problem: `${quoted} is the name of several ${kind} templates: give the id (${list(named)})` };
    const what = byId ? `names a ${byId.kind} template, not a ${kind} one: ${quoted}` : `names no ${kind} template of this project by id or name: ${quoted}`;
    return {
      problem: ofKind.length > 0 ? `${what}; its ${kind} templates are ${list(ofKind)}` : `${what}; it has no ${kind} templates (npm run admin -- template set …)`,
    };
  }
}

function list(templates: readonly TemplateRecord[]): string {
  const shown = templates.slice(0, 10).map((t) => `${t.id} ("${t.name}")`);
  return templates.length > 10 ? `${shown.join(", ")} and ${templates.length - 10} more` : shown.join(", ");
}
