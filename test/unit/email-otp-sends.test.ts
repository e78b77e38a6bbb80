// EmailOtp (the Stytch email sends) through in-memory fakes of its ports:
// Stytch's defaults, the templates a send names, whose code it is (the
// address's user, a user_id, a session's user), and what it refuses.
import { describe, expect, it } from "vitest";
import { type CodeSender, EmailOtp, type EmailSend, type SessionUsers, STYTCH_SEND_DEFAULTS, type TemplateResolver } from "../../src/domain/email-otp.js";
import { DomainError } from "../../src/domain/errors.js";
import type { SendRequest, SendResult } from "../../src/domain/otp-sender.js";
import type { SessionHandle } from "../../src/domain/sign-in.js";
import type { Tenant } from "../../src/domain/tenants.js";
import { unitProject } from "../support/fake-tenants.js";

/** A project whose own default locale is not Stytch's default. */
const project: Tenant = { ...unitProject, defaultLocale: "fr" };

/** Records each send and answers with the result a test chose. */
class RecordingSender implements CodeSender {
  readonly sends: SendRequest[] = [];
  result: SendResult = { sent: true, userId: "user-1", emailId: "email-1", userCreated: false };
  async send(request: SendRequest): Promise<SendResult> {
    this.sends.push(request);
    return this.result;
  }
}

/** Templates by name or id, per tenant and kind; anything else is template_not_found. */
class MemoryTemplates implements TemplateResolver {
  readonly known = new Map([["41\0login\0Welcome", "template-login-1"], ["41\0signup\0template-signup-2", "template-signup-2"]]);
  async resolve(tenantId: string, idOrName: string, kind: "login" | "signup"): Promise<string> {
    const id = this.known.get(`${tenantId}\0${kind}\0${idOrName}`);
    if (!id) throw new DomainError("template_not_found", `${kind}_template_id names no ${kind} template`);
    return id;
  }
}

/** Live sessions by token. */
class MemorySessions implements SessionUsers {
  readonly asked: SessionHandle[] = [];
  async sessionUserId(_tenant: Tenant, handle: SessionHandle): Promise<string> {
    this.asked.push(handle);
    if (handle.token === "live-token") return "user-of-session";
    throw new DomainError("session_not_found", "No live session has that token.");
  }
}

function setup() {
  const sender = new RecordingSender();
  const sessions = new MemorySessions();
  const emailOtp = new EmailOtp(sender, new MemoryTemplates(), sessions);
  const send = (over: Partial<EmailSend> = {}): EmailSend => ({
    tenant: project,
    email: "jane@example.com",
    ttlMinutes: undefined,
    locale: "",
    client: { ipAddress: "203.0.113.9", userAgent: "test" },
    loginTemplate: "",
    signupTemplate: "",
    ...over,
  });
  return { sender, sessions, emailOtp, send };
}

const noSession: SessionHandle = { token: undefined, jwt: undefined };

describe("EmailOtp: Stytch's defaults", () => {
  it("a code lives 2 minutes and mail is in English unless the caller says otherwise (not the tenant's locale)", async () => {
    const { sender, emailOtp, send } = setup();
    await emailOtp.loginOrCreate({ ...send(), pending: false });
    expect(sender.sends[0]).toMatchObject({ ttlMinutes: STYTCH_SEND_DEFAULTS.ttlMinutes, locale: "en" });
    expect(STYTCH_SEND_DEFAULTS).toEqual({ ttlMinutes: 2, locale: "en" });
  });

  it("what the caller gives is kept", async () => {
    const { sender, emailOtp, send } = setup();
    await emailOtp.sendToUser({ ...send({ ttlMinutes: 7, locale: "pt-br" }), userId: "", session: noSession });
    expect(sender.sends[0]).toMatchObject({ ttlMinutes: 7, locale: "pt-br", email: "jane@example.com", tenant: project });
  });
});

describe("EmailOtp.sendToUser", () => {
  it("an address a user already has: fails rather than create one", async () => {
    const { sender, emailOtp, send } = setup();
    await expect(emailOtp.sendToUser({ ...send(), userId: "", session: noSession })).resolves.toMatchObject({ userId: "user-1" });
    expect(sender.sends[0]).toMatchObject({ ifUnknown: "fail", forUserId: undefined });
  });

  it("a user_id names the user the address is added to", async () => {
    const { sender, emailOtp, send } = setup();
    await emailOtp.sendToUser({ ...send(), userId: "user-9", session: noSession });
    expect(sender.sends[0]?.forUserId).toBe("user-9");
  });

  it("a live session names that user, over a user_id", async () => {
    const { sender, sessions, emailOtp, send } = setup();
    await emailOtp.sendToUser({ ...send(), userId: "user-9", session: { token: "live-token", jwt: undefined } });
    expect(sessions.asked).toEqual([{ token: "live-token", jwt: undefined }]);
    expect(sender.sends[0]?.forUserId).toBe("user-of-session");
  });

  it("a session that is not live refuses the send: nothing is sent", async () => {
    const { sender, emailOtp, send } = setup();
    await expect(emailOtp.sendToUser({ ...send(), userId: "", session: { token: "stale", jwt: undefined } })).rejects.toMatchObject({
      reason: "session_not_found",
    });
    expect(sender.sends).toEqual([]);
  });

  it("no session, no lookup", async () => {
    const { sessions, emailOtp, send } = setup();
    await emailOtp.sendToUser({ ...send(), userId: "", session: noSession });
    expect(sessions.asked).toEqual([]);
  });
});

describe("EmailOtp.loginOrCreate", () => {
  it("creates an unknown address's user active, or pending when asked", async () => {
    const { sender, emailOtp, send } = setup();
    await emailOtp.loginOrCreate({ ...send(), pending: false });
    await emailOtp.loginOrCreate({ ...send(), pending: true });
    expect(sender.sends.map((s) => s.ifUnknown)).toEqual(["create-active", "create-pending"]);
  });
});

describe("EmailOtp: custom templates", () => {
  it("are resolved by name or id to the tenant's template ids", async () => {
    const { sender, emailOtp, send } = setup();
    await emailOtp.loginOrCreate({ ...send({ loginTemplate: "Welcome", signupTemplate: "template-signup-2" }), pending: false });
    expect(sender.sends[0]).toMatchObject({ loginTemplateId: "template-login-1", signupTemplateId: "template-signup-2" });
  });

  it("none named: the built-in ones", async () => {
    const { sender, emailOtp, send } = setup();
    await emailOtp.loginOrCreate({ ...send(), pending: false });
    expect(sender.sends[0]?.loginTemplateId).toBeUndefined();
    expect(sender.sends[0]?.signupTemplateId).toBeUndefined();
  });

  it("an unknown one refuses the send before any session is looked up", async () => {
    const { sender, sessions, emailOtp, send } = setup();
    const refused = emailOtp.sendToUser({ ...send({ loginTemplate: "Nope" }), userId: "", session: { token: "live-token", jwt: undefined } });
    await expect(refused).rejects.toMatchObject({ reason: "template_not_found" });
    expect(sessions.asked).toEqual([]);
    expect(sender.sends).toEqual([]);
  });
});

describe("EmailOtp: a send that reports nothing sent", () => {
  it("is the service's fault (internal), never a silent success", async () => {
    const { sender, emailOtp, send } = setup();
    sender.result = { sent: false };
    await expect(emailOtp.loginOrCreate({ ...send(), pending: false })).rejects.toMatchObject({ reason: "internal" });
  });
});
