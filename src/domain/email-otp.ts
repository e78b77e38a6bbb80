// The Stytch email sends (SendEmailOtp, LoginOrCreateEmailOtp) as decisions:
// Stytch's defaults, the custom templates a send names, which user a code is
// for (an address of theirs, or one added to the user a user_id or a live
// session names), and that such a send never skips an address silently.
import { DomainError } from "./errors.js";
import type { Client, SendRequest, SendResult } from "./otp-sender.js";
import type { SessionHandle } from "./sign-in.js";
import type { Tenant } from "./tenants.js";

/** Stytch's documented defaults: a code lives 2 minutes; mail is in English. */
export const STYTCH_SEND_DEFAULTS = { ttlMinutes: 2, locale: "en" } as const;

/** Sends one code (OtpSender). */
export interface CodeSender {
  send(request: SendRequest): Promise<SendResult>;
}

/** A tenant's templates by id or name (TemplateDirectory); throws template_not_found naming the field. */
export interface TemplateResolver {
  resolve(tenantId: string, idOrName: string, kind: "login" | "signup"): Promise<string>;
}

/** The user a live session belongs to (SignIn); throws session_not_found. */
export interface SessionUsers {
  sessionUserId(tenant: Tenant, handle: SessionHandle): Promise<string>;
}

/** What both sends take, as the caller gave it: absent values are undefined or "". */
export interface EmailSend {
  readonly tenant: Tenant;
  readonly email: string;
  readonly ttlMinutes: number | undefined;
  readonly locale: string;
  readonly client: Client;
  /** A custom template by id or name; "": the built-in one. */
  readonly loginTemplate: string;
  readonly signupTemplate: string;
}

export type Sent = Extract<SendResult, { sent: true }>;

export class EmailOtp {
  constructor(
    private readonly sender: CodeSender,
    private readonly templates: TemplateResolver,
    private readonly sessions: SessionUsers,
  ) {}

  /**
   * A code for an address a user already has; with a user_id, or a session
   * that names one (token or JWT), the address is added to that user.
   */
  async sendToUser(request: EmailSend & { readonly userId: string; readonly session: SessionHandle }): Promise<Sent> {
    const templates = await this.chosenTemplates(request);
    const { session } = request;
    const sessionUser = session.token || session.jwt ? await this.sessions.sessionUserId(request.tenant, session) : undefined;
    return this.sent({ ...this.base(request), ...templates, ifUnknown: "fail", forUserId: sessionUser ?? (request.userId || undefined) });
  }

  /** A code for any address, creating its user first (active, or pending when asked) if the tenant has none. */
  async loginOrCreate(request: EmailSend & { readonly pending: boolean }): Promise<Sent> {
    const templates = await this.chosenTemplates(request);
    return this.sent({ ...this.base(request), ...templates, ifUnknown: request.pending ? "create-pending" : "create-active" });
  }

  private base(request: EmailSend) {
    return {
      tenant: request.tenant,
      email: request.email,
      ttlMinutes: request.ttlMinutes ?? STYTCH_SEND_DEFAULTS.ttlMinutes,
      locale: request.locale || STYTCH_SEND_DEFAULTS.locale,
      client: request.client,
    };
  }

  private async chosenTemplates(request: EmailSend): Promise<{ loginTemplateId?: string; signupTemplateId?: string }> {
    const { tenant } = request;
    return {
      loginTemplateId: request.loginTemplate ? await this.templates.resolve(tenant.id, request.loginTemplate, "login") : undefined,
      signupTemplateId: request.signupTemplate ? await this.templates.resolve(tenant.id, request.signupTemplate, "signup") : undefined,
    };
  }

  /** These sends never skip an unknown address (they fail or create), so nothing sent is a bug. */
  private async sent(request: SendRequest): Promise<Sent> {
    const result = await this.sender.send(request);
    if (!result.sent) throw new DomainError("internal", "a send that may not skip reported nothing sent");
    return result;
  }
}
