// The end user's client for a call: what a Stytch caller says in attributes,
// else nothing (a Stytch caller is a backend; its own address says nothing
// of its user). Legacy callers are the browsers themselves.
import type { HandlerContext } from "@connectrpc/connect";
import { DomainError } from "../../domain/errors.js";
import type { Client } from "../../domain/otp-sender.js";
import type { Tenant } from "../../domain/tenants.js";
import { callInfoKey, tenantKey } from "../context.js";

/** What both Stytch send RPCs hand the domain, from their shared request fields. */
export function stytchSend(
  req: { email: string; expirationMinutes?: number; locale: string; attributes?: { ipAddress: string; userAgent: string } },
  ctx: HandlerContext,
) {
  return {
    tenant: projectOf(ctx),
    email: req.email,
    ttlMinutes: req.expirationMinutes ?? 2,
    locale: req.locale || "en",
    client: stytchClient(req.attributes),
  };
}

export function stytchClient(attributes: { ipAddress: string; userAgent: string } | undefined): Client {
  return { ipAddress: attributes?.ipAddress || undefined, userAgent: attributes?.userAgent || undefined };
}

export function browserClient(ctx: HandlerContext): Client {
  const info = ctx.values.get(callInfoKey);
  return { ipAddress: info.clientIp, userAgent: info.userAgent };
}

/** The project the auth interceptor authenticated. */
export function projectOf(ctx: HandlerContext): Tenant {
  const tenant = ctx.values.get(tenantKey);
  if (!tenant) throw new DomainError("internal", "no authenticated project on a Stytch method");
  return tenant;
}

/** Custom templates are per tenant; none can be named until one is stored. */
export function rejectUnknownTemplates(req: { loginTemplateId: string; signupTemplateId: string }): void {
  for (const [field, jsonField, id] of [
    ["login_template_id", "loginTemplateId", req.loginTemplateId],
    ["signup_template_id", "signupTemplateId", req.signupTemplateId],
  ] as const) {
    if (id) {
      throw new DomainError("template_not_found", `${field} names no template of this project: ${JSON.stringify(id)}`, {
        violations: [{ field, jsonField, description: "names no template of this project" }],
      });
    }
  }
}
