// The end user's client for a call: what a Stytch caller says in attributes,
// else nothing (a Stytch caller is a backend; its own address says nothing
// of its user). Legacy callers are the browsers themselves.
import type { HandlerContext } from "@connectrpc/connect";
import { DomainError } from "../../domain/errors.js";
import type { Client, SendResult } from "../../domain/otp-sender.js";
import type { Tenant } from "../../domain/tenants.js";
import type { HandlerDeps } from "./deps.js";
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

/** The business a legacy call names; an unknown one is a bad businessId. */
export async function knownBusiness(deps: HandlerDeps, businessId: bigint): Promise<Tenant> {
  const business = await deps.businesses.find(businessId.toString());
  if (!business) {
    throw new DomainError("invalid_argument", "business_id names no known business", {
      violations: [{ field: "business_id", description: "names no known business" }],
    });
  }
  return business;
}

/** A Stytch send's result: those sends never skip an unknown address, so nothing sent is a bug. */
export function sentOrThrow(result: SendResult): Extract<SendResult, { sent: true }> {
  if (!result.sent) throw new DomainError("internal", "a send that may not skip reported nothing sent");
  return result;
}

/** The custom templates a send names (by id or name), resolved to the tenant's template ids. */
export async function chosenTemplates(
  deps: HandlerDeps,
  ctx: HandlerContext,
  req: { loginTemplateId: string; signupTemplateId: string },
): Promise<{ loginTemplateId?: string; signupTemplateId?: string }> {
  const tenant = projectOf(ctx);
  return {
    loginTemplateId: req.loginTemplateId ? await deps.templates.resolve(tenant.id, req.loginTemplateId, "login") : undefined,
    signupTemplateId: req.signupTemplateId ? await deps.templates.resolve(tenant.id, req.signupTemplateId, "signup") : undefined,
  };
}
