// The send use case through an in-memory OtpStore: what it asks the store
// to do, and how it answers each outcome. No database.
import { describe, expect, it } from "vitest";
import { DomainError } from "../../src/domain/errors.js";
import { OtpSender, type OtpStore, type SendCommand, type SendOutcome, type SendRequest } from "../../src/domain/otp-sender.js";
import { chargesForSend, type SendLimits } from "../../src/domain/rate-limit-policy.js";
import { Secrets } from "../../src/domain/secrets.js";
import { unitProject } from "../support/fake-tenants.js";

const secrets = new Secrets({ id: 3, secret: "unit-test-pepper-0123456789abcdef" });
const limits: SendLimits = {
  email: { burst: 3, periodMs: 60_000 },
  emailDaily: { burst: 20, periodMs: 4_320_000 },
  ip: { burst: 10, periodMs: 6_000 },
  tenant: { burst: 1_000, periodMs: 60 },
  tenantShards: 4,
};

/** Records each command and answers with the outcome a test chose. */
class FakeOtpStore implements OtpStore {
  readonly commands: SendCommand[] = [];
  constructor(private outcome: SendOutcome = { kind: "sent", userId: "user-1", emailId: "email-1", userCreated: false }) {}
  answer(outcome: SendOutcome): void {
    this.outcome = outcome;
  }
  async send(command: SendCommand): Promise<SendOutcome> {
    this.commands.push(command);
    return this.outcome;
  }
}

const project = unitProject;

function setup() {
  const store = new FakeOtpStore();
  let woken = 0;
  const sender = new OtpSender(store, secrets, limits, "mail.example.com", () => woken++);
  const request = (over: Partial<SendRequest> = {}): SendRequest => ({
    tenant: project,
    email: "  Jane@Example.COM ",
    ttlMinutes: 10,
    locale: "fr",
    client: { ipAddress: "203.0.113.9", userAgent: "test" },
    ifUnknown: "create-pending",
    ...over,
  });
  return { store, sender, request, woken: () => woken };
}

describe("OtpSender", () => {
  it("sends one command: normalised address, hashed and sealed code, limits, TTL, locale; then wakes delivery", async () => {
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
});
