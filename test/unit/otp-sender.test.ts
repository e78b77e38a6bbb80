// The send use case through an in-memory OtpStore: what it asks the store
// to do, and how it answers each outcome. No database.
import { describe, expect, it } from "vitest";
import { DomainError } from "../../src/domain/errors.js";
import { OtpSender, type OtpStore, type SendCommand, type SendOutcome, type SendRequest } from "../../src/domain/otp-sender.js";
import type { MailHandoff, OutboxRow, ReservedDelivery } from "../../src/domain/outbox.js";
import { chargesForSend, type SendLimits } from "../../src/domain/rate-limit-policy.js";
import { Secrets } from "../../src/domain/secrets.js";
import { SendAdmission } from "../../src/domain/send-admission.js";
import { FakeClock } from "../support/fake-clock.js";
import { unitProject } from "../support/fake-tenants.js";

const secrets = new Secrets({ id: 3, secret: "unit-test-pepper-0123456789abcdef" });
const limits: SendLimits = {
  email: { burst: 3, periodMs: 60_000 },
  emailDaily: { burst: 20, periodMs: 4_320_000 },
  ip: { burst: 10, periodMs: 6_000 },
  tenant: { burst: 1_000, periodMs: 60 },
  tenantShards: 4,
};

/** The row a store inserts claimed for a command with a lease. */
function claimedRow(command: SendCommand): OutboxRow {
  const now = new Date(0);
  return {
    id: "77",
    recipient: command.address,
    locale: command.locale,
    template: "signup",
    payload: command.sealedCode,
    keyId: command.keyId,
    expiresAt: new Date(command.ttlSeconds * 1000),
    messageId: command.messageId,
    attempts: 1,
    createdAt: now,
    tenantName: "Unit",
    mailFromName: null,
    mailFromAddress: null,
    replyTo: null,
    branding: { logoUrl: null, accentColor: null, supportUrl: null },
    custom: undefined,
  };
}

/** Records each command and answers with the outcome a test chose (a sent one with a lease carries its claimed row). */
class FakeOtpStore implements OtpStore {
  readonly commands: SendCommand[] = [];
  failure: Error | undefined;
  constructor(private outcome: SendOutcome = { kind: "sent", userId: "user-1", emailId: "email-1", userCreated: false }) {}
  answer(outcome: SendOutcome): void {
    this.outcome = outcome;
  }
  async send(command: SendCommand): Promise<SendOutcome> {
    this.commands.push(command);
    if (this.failure) throw this.failure;
    if (this.outcome.kind === "sent" && command.leaseMs !== undefined && command.deliver) return { ...this.outcome, claimed: claimedRow(command) };
    return this.outcome;
  }
}

/** This instance's delivery: places while `room` lasts; records what it is handed, freed and told. */
class FakeHandoff implements MailHandoff {
  room = 0;
  reserved = 0;
  cancelled = 0;
  readonly handed: { row: OutboxRow; code: string }[] = [];
  readonly woken: string[] = [];
  reserve(): ReservedDelivery | undefined {
    if (this.room === 0) return undefined;
    this.room--;
    this.reserved++;
    return {
      leaseMs: 30_000,
      deliver: (row, code) => void this.handed.push({ row, code }),
      cancel: () => void this.cancelled++,
    };
  }
  queued(messageId: string): void {
    this.woken.push(messageId);
  }
}

const project = unitProject;

function setup() {
  const store = new FakeOtpStore();
  const handoff = new FakeHandoff();
  const clock = new FakeClock();
  const admission = new SendAdmission(
    { maxInFlight: 1_000, minInFlight: 1, targetLatencyMs: 50, maxMailWaitMs: 10_000, backlogFloor: 1_000_000, maxLoopDelayMs: 0 },
    { count: async () => 0 },
    clock,
  );
  const sender = new OtpSender(store, secrets, limits, "mail.example.com", handoff, undefined, admission, clock);
  const request = (over: Partial<SendRequest> = {}): SendRequest => ({
    tenant: project,
    email: "  Jane@Example.COM ",
    ttlMinutes: 10,
    locale: "fr",
    client: { ipAddress: "203.0.113.9", userAgent: "test" },
    ifUnknown: "create-pending",
    ...over,
  });
  return { store, sender, request, handoff, clock, admission, woken: () => handoff.woken.length };
}

describe("a client over its send limit", () => {
  const ipKey = (tenantId: string, ip: string) => chargesForSend(limits, secrets, tenantId, "x@example.com", ip).find((c) => c.key.startsWith("i:"))!.key;

  it("is refused at once while the limit lasts: no slot taken, no statement run, the same answer with the time left", async () => {
    const { store, sender, request, clock, admission } = setup();
    store.answer({ kind: "rate_limited", retryAfterMs: 6_000, limitKey: ipKey("41", "203.0.113.9") });
    await expect(sender.send(request())).rejects.toMatchObject({ reason: "rate_limited", details: { retryAfterMs: 6_000, limit: "ip" } });
    expect(store.commands).toHaveLength(1);
    clock.advance(2_000);
    const held = Array.from({ length: 50 }, () => sender.send(request({ email: `other-${Math.random()}@example.com` })));
    expect(admission.sendsInFlight()).toBe(0);
    for (const refused of await Promise.allSettled(held)) {
      expect(refused).toMatchObject({ status: "rejected", reason: { reason: "rate_limited", details: { retryAfterMs: 4_000, limit: "ip" } } });
    }
    expect(store.commands).toHaveLength(1);
    // Another client of the tenant is asked about as before ...
    store.answer({ kind: "sent", userId: "user-1", emailId: "email-1", userCreated: false });
    await expect(sender.send(request({ client: { ipAddress: "198.51.100.4", userAgent: "t" } }))).resolves.toMatchObject({ sent: true });
    // ... and so is this one once its limit allows a send again.
    clock.advance(4_000);
    await expect(sender.send(request())).resolves.toMatchObject({ sent: true });
    expect(store.commands).toHaveLength(3);
  });

  it("is remembered for the client's limit only: an address's limit is asked about every time", async () => {
    const { store, sender, request } = setup();
    store.answer({ kind: "rate_limited", retryAfterMs: 60_000, limitKey: "e:41:abc" });
    await expect(sender.send(request())).rejects.toMatchObject({ details: { limit: "email" } });
    await expect(sender.send(request())).rejects.toMatchObject({ details: { limit: "email" } });
    expect(store.commands).toHaveLength(2);
  });
});

describe("OtpSender", () => {
  it("sends one command: normalised address, hashed and sealed code, limits, TTL, locale; with delivery full, queues the mail for any worker and wakes it", async () => {
    const { store, sender, request, woken } = setup();
    expect(await sender.send(request())).toEqual({ sent: true, userId: "user-1", emailId: "email-1", userCreated: false });
    const [c] = store.commands;
    expect(c).toMatchObject({
      tenantId: "41",
      address: "jane@example.com",
      createStatus: "pending",
      keyId: 3,
      ttlSeconds: 600,
      locale: "fr",
      ipAddress: "203.0.113.9",
      deliver: true,
      leaseMs: undefined,
    });
    expect(c!.messageId).toMatch(/^<[0-9a-f-]{36}@mail\.example\.com>$/);
    const code = secrets.decrypt(c!.sealedCode, c!.keyId, c!.messageId);
    expect(code).toMatch(/^\d{6}$/);
    expect(secrets.codeMatches(c!.codeHash, c!.keyId, "41", "jane@example.com", code)).toBe(true);
    expect(c!.limits).toEqual(chargesForSend(limits, secrets, "41", "jane@example.com", "203.0.113.9"));
    expect(woken()).toBe(1);
  });

  it("the sandbox address of a test project: code 000000, user created active, no mail, no wake", async () => {
    const { store, sender, request, woken } = setup();
    await sender.send(request({ email: "sandbox@stytch.com", ifUnknown: "fail" }));
    const [c] = store.commands;
    expect(c).toMatchObject({ deliver: false, createStatus: "active" });
    expect(secrets.codeMatches(c!.codeHash, c!.keyId, "41", "sandbox@stytch.com", "000000")).toBe(true);
    expect(woken()).toBe(0);
  });

  it("a live project's sandbox address is an ordinary address", async () => {
    const { store, sender, request } = setup();
    await sender.send(request({ tenant: { ...project, live: true }, email: "sandbox@stytch.com" }));
    expect(store.commands[0]).toMatchObject({ deliver: true, createStatus: "pending" });
  });

  it("answers each refusal with its domain reason", async () => {
    const { store, sender, request, woken } = setup();
    store.answer({ kind: "rate_limited", retryAfterMs: 1_500, limitKey: "e:41:abc" });
    const limited = await sender.send(request()).catch((e: unknown) => e);
    expect(limited).toBeInstanceOf(DomainError);
    expect(limited).toMatchObject({ reason: "rate_limited", details: { retryAfterMs: 1_500, limit: "email" } });

    store.answer({ kind: "user_not_found" });
    await expect(sender.send(request({ forUserId: "user-x" }))).rejects.toMatchObject({ reason: "user_not_found" });

    store.answer({ kind: "email_not_found" });
    await expect(sender.send(request({ ifUnknown: "fail" }))).rejects.toMatchObject({ reason: "email_not_found" });
    expect(woken()).toBe(0);
  });

  it("an unknown address on a route that must not tell: the same command, no error, nothing sent", async () => {
    const { store, sender, request } = setup();
    store.answer({ kind: "email_not_found" });
    expect(await sender.send(request({ ifUnknown: "ignore" }))).toEqual({ sent: false });
    expect(store.commands[0]).toMatchObject({ createStatus: undefined, deliver: true });
  });

  describe("handing its mail to this instance's delivery", () => {
    it("with a place, the row is inserted claimed for the place's lease and handed over with the code; no worker is woken", async () => {
      const { store, sender, request, handoff, woken } = setup();
      handoff.room = 1;
      await sender.send(request());
      const [c] = store.commands;
      expect(c!.leaseMs).toBe(30_000);
      expect(handoff.handed).toHaveLength(1);
      const [{ row, code }] = handoff.handed as [{ row: OutboxRow; code: string }];
      expect(row.messageId).toBe(c!.messageId);
      expect(code).toBe(secrets.decrypt(c!.sealedCode, c!.keyId, c!.messageId));
      expect(handoff.cancelled).toBe(0);
      expect(woken()).toBe(0);
    });

    it("a place the send did not use is freed: refused, unknown address, failed statement", async () => {
      const { store, sender, request, handoff, woken } = setup();
      handoff.room = 3;
      store.answer({ kind: "rate_limited", retryAfterMs: 1_000, limitKey: "e:41:abc" });
      await expect(sender.send(request())).rejects.toMatchObject({ reason: "rate_limited" });
      store.answer({ kind: "email_not_found" });
      expect(await sender.send(request({ ifUnknown: "ignore" }))).toEqual({ sent: false });
      store.failure = new Error("connection lost");
      await expect(sender.send(request())).rejects.toThrow("connection lost");
      expect(handoff.reserved).toBe(3);
      expect(handoff.cancelled).toBe(3);
      expect(handoff.handed).toHaveLength(0);
      expect(woken()).toBe(0);
    });

    it("the sandbox takes no place", async () => {
      const { store, sender, request, handoff } = setup();
      handoff.room = 1;
      await sender.send(request({ email: "sandbox@stytch.com" }));
      expect(store.commands[0]!.leaseMs).toBeUndefined();
      expect(handoff.reserved).toBe(0);
    });
  });
});
