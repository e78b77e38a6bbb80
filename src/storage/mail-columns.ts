// What rendering a mail needs of its tenant and custom template, as the
// outbox claim and the send statement (for rows it inserts claimed) both
// return it: one mapping from those columns to the OutboxRow's fields.
import type { OutboxRow } from "../domain/outbox.js";

/** A tenant's sender and branding columns, as the tenants table names them. */
export interface TenantMailColumns {
  mail_from_name: string | null;
  mail_from_address: string | null;
  reply_to: string | null;
  logo_url: string | null;
  accent_color: string | null;
  support_url: string | null;
}

export interface MailColumns extends TenantMailColumns {
  tenant_name: string;
  custom_subject: string | null;
  custom_text: string | null;
  custom_html: string | null;
}

/** The tenant's sender and branding, and the custom template when the mail has one. */
export function mailParts(r: MailColumns): Pick<OutboxRow, "tenantName" | "mailFromName" | "mailFromAddress" | "replyTo" | "branding" | "custom"> {
  return {
    tenantName: r.tenant_name,
    mailFromName: r.mail_from_name,
    mailFromAddress: r.mail_from_address,
    replyTo: r.reply_to,
    branding: { logoUrl: r.logo_url, accentColor: r.accent_color, supportUrl: r.support_url },
    custom: r.custom_subject === null ? undefined : { subject: r.custom_subject, text: r.custom_text!, html: r.custom_html! },
  };
}
