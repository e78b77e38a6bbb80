// Admin records as the proto messages callers see, and back.
import { create } from "@bufbuild/protobuf";
import { timestampDate, timestampFromMs, type Timestamp } from "@bufbuild/protobuf/wkt";
import {
  AdminUserSchema,
  AuditEventSchema,
  BrandingSchema,
  BusinessSchema,
  DeliverySchema,
  ProjectSchema,
  AuditAction,
  DeliveryStatus,
  TemplateKind,
  TemplateSchema,
  UserStatus,
  type Branding,
} from "../../../../gen/otp/v1/admin_service_pb.js";
import type {
  AdminUserRecord,
  AuditRecord,
  BrandingPatch,
  BrandingRecord,
  BusinessRecord,
  DeliveryRecord,
  ProjectRecord,
  TemplateRecord,
  TenantRef,
} from "../../../domain/admin-records.js";

/** The request's `tenant` oneof as the domain's reference; none when unset or empty. */
export function tenantOf(tenant: { case: "projectId"; value: string } | { case: "businessId"; value: bigint } | { case: undefined }): TenantRef | undefined {
  if (tenant.case === "projectId") return tenant.value ? { projectId: tenant.value } : undefined;
  if (tenant.case === "businessId") return tenant.value ? { businessId: tenant.value.toString() } : undefined;
  return undefined;
}

export function brandingMessage(b: BrandingRecord): Branding {
  return create(BrandingSchema, {
    senderName: b.senderName ?? "",
    senderAddress: b.senderAddress ?? "",
    replyTo: b.replyTo ?? "",
    logoUrl: b.logoUrl ?? "",
    accentColor: b.accentColor ?? "",
    supportUrl: b.supportUrl ?? "",
    defaultLocale: b.defaultLocale,
  });
}

/** Branding from a request: an empty (or absent) field leaves the stored value as it is. */
export function brandingPatch(b: Branding | undefined): BrandingPatch {
  if (!b) return {};
  const patch: Record<string, string> = {};
  for (const key of ["senderName", "senderAddress", "replyTo", "logoUrl", "accentColor", "supportUrl", "defaultLocale"] as const) {
    if (b[key]) patch[key] = b[key];
  }
  return patch;
}

export const projectMessage = (p: ProjectRecord) =>
  create(ProjectSchema, {
    projectId: p.projectId,
    name: p.name,
    live: p.live,
    branding: brandingMessage(p.branding),
    createdAt: timestampFromMs(p.createdAt),
  });

export const businessMessage = (b: BusinessRecord) =>
  create(BusinessSchema, {
    businessId: BigInt(b.businessId),
    name: b.name,
    branding: brandingMessage(b.branding),
    createdAt: timestampFromMs(b.createdAt),
  });

/** The schema's template kinds as the domain's words, and back. */
const KIND_WORDS = new Map<TemplateKind, TemplateRecord["kind"]>([
  [TemplateKind.LOGIN, "login"],
  [TemplateKind.SIGNUP, "signup"],
]);

/** The domain's word for a kind the validator let through (defined, not UNSPECIFIED). */
export function templateKindOf(kind: TemplateKind): TemplateRecord["kind"] {
  const word = KIND_WORDS.get(kind);
  if (!word) throw new Error(`template kind ${kind} passed validation`);
  return word;
}

export const templateMessage = (t: TemplateRecord) =>
  create(TemplateSchema, {
    templateId: t.id,
    kind: enumOf<TemplateKind>(TemplateKind, t.kind),
    name: t.name,
    subject: t.subject,
    textBody: t.text,
    htmlBody: t.html,
    updatedAt: timestampFromMs(t.updatedAt),
  });

/** A closed word the database keeps (CHECK constraints) as the schema's enum value: "sent" → DELIVERY_STATUS_SENT; UNSPECIFIED if new. */
function enumOf<E extends number>(values: Record<string, string | number>, word: string): E {
  const value = values[word.toUpperCase()];
  return (typeof value === "number" ? value : 0) as E;
}

export const userMessage = (u: AdminUserRecord) =>
  create(AdminUserSchema, { userId: u.userId, status: enumOf<UserStatus>(UserStatus, u.status), emails: [...u.emails], createdAt: timestampFromMs(u.createdAt) });

export const auditMessage = (e: AuditRecord) =>
  create(AuditEventSchema, {
    occurredAt: timestampFromMs(e.occurredAt),
    action: enumOf<AuditAction>(AuditAction, e.action),
    userId: e.userId ?? "",
    emailId: e.emailId ?? "",
    ipAddress: e.ipAddress ?? "",
    userAgent: e.userAgent ?? "",
    outcome: e.outcome,
    reason: e.reason ?? "",
  });

export const deliveryMessage = (d: DeliveryRecord) =>
  create(DeliverySchema, {
    messageId: d.messageId,
    status: enumOf<DeliveryStatus>(DeliveryStatus, d.status),
    attempts: d.attempts,
    lastError: d.lastError ?? "",
    createdAt: timestampFromMs(d.createdAt),
    sentAt: d.sentAt === null ? undefined : timestampFromMs(d.sentAt),
  });

export const msOf = (t: Timestamp | undefined) => (t ? timestampDate(t).getTime() : undefined);
