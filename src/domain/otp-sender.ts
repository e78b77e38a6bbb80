// Sending a passcode: generate it, keep only its keyed hash, and hand the
// store one command that charges the limits, stores the code and queues the
// mail in a single transaction.
import { randomUUID } from "node:crypto";
import { type Clock, systemClock } from "./clock.js";
import { DomainError } from "./errors.js";
import { newId } from "./ids.js";
import { chargesForSend, type ClientLimitKeys, clientLimitKeys, limitName, type LimitCharge, type SendLimits } from "./rate-limit-policy.js";
import { ResponseFloor } from "./response-floor.js";
import { noHandoff, type MailHandoff, type OutboxRow } from "./outbox.js";
import { generateCode, type Secrets } from "./secrets.js";
import type { SendAdmission } from "./send-admission.js";
import type { Tenant } from "./tenants.js";
import { TtlCache } from "./ttl-cache.js";

export interface SendCommand {
  readonly tenantId: string;
  readonly address: string;
  readonly limits: readonly LimitCharge[];
  /** Status of a user created for a new address; undefined: never create. */
  readonly createStatus: "active" | "pending" | undefined;
  readonly newUserId: string;
  readonly newEmailId: string;
  /** Attach a new address to this user instead of creating one. */
  readonly forUserId: string | undefined;
  readonly codeHash: Buffer;
  readonly keyId: number;
  readonly ttlSeconds: number;
  /** The code, encrypted for the outbox and bound to messageId. */
  readonly sealedCode: Buffer;
  readonly messageId: string;
  readonly locale: string;
  readonly ipAddress: string | undefined;
  readonly userAgent: string | undefined;
  /** False for the sandbox: the code is stored, no mail is queued. */
  readonly deliver: boolean;
  /** The tenant's custom templates for login and sign-up mail, if chosen. */
  readonly loginTemplateId: string | undefined;
  readonly signupTemplateId: string | undefined;
  /** Set when this instance delivers the mail itself: its outbox row is inserted claimed by it for this long. */
  readonly leaseMs: number | undefined;
}

export type SendOutcome =
  | {
      readonly kind: "sent";
      readonly userId: string;
      readonly emailId: string;
      readonly userCreated: boolean;
      /** With a lease and mail: the outbox row as inserted, claimed by this instance. */
      readonly claimed?: OutboxRow;
    }
  | { readonly kind: "rate_limited"; readonly retryAfterMs: number; readonly limitKey: string }
  | { readonly kind: "email_not_found" }
  | { readonly kind: "user_not_found" };

/** Storage port: runs a SendCommand as one transaction. */
export interface OtpStore {
  send(command: SendCommand): Promise<SendOutcome>;
}

export interface Client {
  readonly ipAddress: string | undefined;
  readonly userAgent: string | undefined;
}

export interface SendRequest {
  readonly tenant: Tenant;
  /** Already shape-checked by the transport. */
  readonly email: string;
  readonly ttlMinutes: number;
  readonly locale: string;
  readonly client: Client;
  /** What to do when the tenant has no such address. */
  readonly ifUnknown: "fail" | "create-active" | "create-pending" | "ignore";
  readonly forUserId?: string;
  /** Custom templates, already known to belong to the tenant. */
  readonly loginTemplateId?: string;
  readonly signupTemplateId?: string;
}

export type SendResult =
  | { readonly sent: true; readonly userId: string; readonly emailId: string; readonly userCreated: boolean }
  | { readonly sent: false };

/** The legacy portal's send: codes' lifetime and the answer's time floor. */
export interface LegacySendPolicy {
  readonly codeTtlMinutes: number;
  readonly minResponseMs: number;
}

const SANDBOX_EMAIL = "sandbox@stytch.com";
const SANDBOX_CODE = "000000";

export class OtpSender {
  private readonly legacyFloor: ResponseFloor;
  /**
   * Clients found over their send limit, by its key: until when. A client
   * flooding sends it may not make would otherwise hold an admission slot
   * and a statement for each, and crowd everyone else out as "capacity";
   * refused here, it costs neither. The database decides again once the
   * time is up (a refused send charges nothing, so it cannot allow one
   * sooner). Per instance, bounded.
   */
  private readonly overLimit: TtlCache<string, number>;

  constructor(
    private readonly store: OtpStore,
    private readonly secrets: Secrets,
    private readonly limits: SendLimits,
    private readonly messageIdDomain: string,
    /** This instance's delivery: takes the mail a send queued, or is told it is queued for any worker. */
    private readonly handoff: MailHandoff = noHandoff,
    private readonly legacy: LegacySendPolicy = { codeTtlMinutes: 10, minResponseMs: 0 },
    /** Refuses sends the service cannot answer or deliver in time; none: every send is tried. */
    private readonly admission?: SendAdmission,
    private readonly clock: Clock = systemClock,
  ) {
    this.legacyFloor = new ResponseFloor(legacy.minResponseMs);
    this.overLimit = new TtlCache(clock, 10_000);
  }

  /**
   * The legacy portal's send: the same answer whether or not the address is
   * a customer of the business. The same statement runs either way (and
   * charges the same limits); a stranger simply gets no code or mail. A
   * customer's send writes more, so the answer waits for a fixed floor.
   */
  sendLegacy(business: Tenant, email: string, client: Client): Promise<void> {
    return this.legacyFloor.hold(async () => {
      await this.send({
        tenant: business,
        email,
        ttlMinutes: this.legacy.codeTtlMinutes,
        locale: business.defaultLocale,
        client,
        ifUnknown: "ignore",
      });
    });
  }

  async send(request: SendRequest): Promise<SendResult> {
    // Refused before anything about the address is looked at: the refusal says nothing about it.
    const clientLimits = request.client.ipAddress === undefined ? undefined : clientLimitKeys(this.secrets, request.tenant.id, request.client.ipAddress);
    if (clientLimits !== undefined) this.refuseIfKnownOver(clientLimits);
    const release = this.admission?.admit(request.ttlMinutes * 60_000);
    let queued = false;
    try {
      const result = await this.sendAdmitted(request, clientLimits);
      queued = result.queued;
      return result.result;
    } finally {
      release?.(queued);
    }
  }

  /** Refuses a client (or its IPv6 site) this instance saw refused, until its limit allows a send again. */
  private refuseIfKnownOver(keys: ClientLimitKeys): void {
    const until = this.overLimit.get(keys.ip);
    if (until !== undefined) throw tooMany(until - this.clock.now(), "ip");
    const siteUntil = keys.site === undefined ? undefined : this.overLimit.get(keys.site);
    if (siteUntil !== undefined) throw tooMany(siteUntil - this.clock.now(), "ip_site");
  }

  private async sendAdmitted(request: SendRequest, clientLimits: ClientLimitKeys | undefined): Promise<{ result: SendResult; queued: boolean }> {
    const { tenant, client } = request;
    const address = normalizeAddress(request.email);
    // The sandbox: test projects may use SANDBOX_EMAIL, which always exists,
    // always takes SANDBOX_CODE and never gets mail.
    const sandbox = tenant.kind === "project" && !tenant.live && address === SANDBOX_EMAIL;
    const code = sandbox ? SANDBOX_CODE : generateCode();
    const messageId = `<${randomUUID()}@${this.messageIdDomain}>`;
    const ifUnknown = sandbox ? "create-active" : request.ifUnknown;
    const createStatus = ifUnknown === "create-active" ? "active" : ifUnknown === "create-pending" ? "pending" : undefined;
    // Reserved before the statement, which inserts the row already claimed.
    const place = sandbox ? undefined : this.handoff.reserve();
    let outcome: SendOutcome;
    try {
      outcome = await this.store.send({
        tenantId: tenant.id,
        address,
        limits: chargesForSend(this.limits, this.secrets, tenant.id, address, client.ipAddress, clientLimits),
        createStatus,
        newUserId: newId("user", tenant.live),
        newEmailId: newId("email", tenant.live),
        forUserId: request.forUserId,
        codeHash: this.secrets.hashCode(tenant.id, address, code),
        keyId: this.secrets.keyId,
        ttlSeconds: request.ttlMinutes * 60,
        sealedCode: this.secrets.encrypt(code, messageId),
        messageId,
        locale: request.locale,
        ipAddress: client.ipAddress,
        userAgent: client.userAgent,
        deliver: !sandbox,
        loginTemplateId: request.loginTemplateId,
        signupTemplateId: request.signupTemplateId,
        leaseMs: place?.leaseMs,
      });
    } catch (err) {
      // Had the statement committed after all, its row waits for its lease to end.
      place?.cancel();
      throw err;
    }
    if (outcome.kind === "sent" && outcome.claimed && place) {
      place.deliver(outcome.claimed, code);
    } else {
      place?.cancel();
      if (outcome.kind === "sent" && !sandbox) this.handoff.queued(messageId);
    }
    switch (outcome.kind) {
      case "sent":
        return { result: { sent: true, userId: outcome.userId, emailId: outcome.emailId, userCreated: outcome.userCreated }, queued: !sandbox };
      case "rate_limited": {
        const limit = limitName(outcome.limitKey);
        if (limit === "ip" || limit === "ip_site") {
          const until = this.clock.now() + outcome.retryAfterMs;
          this.overLimit.setUntil(outcome.limitKey, until, until);
        }
        throw tooMany(outcome.retryAfterMs, limit);
      }
      case "user_not_found":
        throw new DomainError("user_not_found", "No user with that user_id exists in this project.");
      case "email_not_found":
        if (request.ifUnknown === "ignore") return { result: { sent: false }, queued: false };
        throw new DomainError("email_not_found", "No user with that email exists in this project.");
    }
  }
}

function tooMany(retryAfterMs: number, limit: ReturnType<typeof limitName>): DomainError {
  return new DomainError("rate_limited", "Too many requests: wait before requesting another code.", { retryAfterMs, limit });
}

/** Addresses are compared case-insensitively and without surrounding space. */
export function normalizeAddress(email: string): string {
  return email.trim().toLowerCase();
}
