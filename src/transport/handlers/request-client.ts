// What a call says about who is asking, in the domain's terms: the end
// user's client (what a Stytch caller reports in attributes, else nothing: a
// Stytch caller is a backend, and its own address says nothing of its user;
// legacy callers are the browsers themselves), and the project the auth
// interceptor authenticated.
import type { HandlerContext } from "@connectrpc/connect";
import { DomainError } from "../../domain/errors.js";
import type { EmailSend } from "../../domain/email-otp.js";
import type { Client } from "../../domain/otp-sender.js";
import type { Tenant } from "../../domain/tenants.js";
import { callInfoKey, tenantKey } from "../context.js";

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

/** The fields both Stytch email sends share, as the EmailOtp use case takes them. */
export function emailSendOf(
  req: {
    email: string;
    expirationMinutes?: number;
    locale: string;
    attributes?: { ipAddress: string; userAgent: string };
    loginTemplateId: string;
    signupTemplateId: string;
  },
  ctx: HandlerContext,
): EmailSend {
  return {
    tenant: projectOf(ctx),
    email: req.email,
    ttlMinutes: req.expirationMinutes,
    locale: req.locale,
    client: stytchClient(req.attributes),
    loginTemplate: req.loginTemplateId,
    signupTemplate: req.signupTemplateId,
  };
}
