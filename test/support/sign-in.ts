// The sign-in test kit: one TestEnv per file (sends to one address and
// failed checks unthrottled, as the sign-in scenarios need), and the calls
// those tests make: Stytch authenticate, sends whose code is read from the
// mail, the legacy send and exchange, and row lookups.
import { ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, expect } from "vitest";
import { answer, emailFactory, mailbox, type Answer } from "./answers.js";
import { addTestUser, startTestEnv, type TestEnv, type TestProject } from "./app.js";
import { codeIn } from "./smtp.js";

let current: TestEnv | undefined;
let second: string | undefined;

/**
 * Starts this file's service before its tests and stops it after; with
 * secondInstance, a second instance on the same database too.
 */
export function useSignInEnv(options: { secondInstance?: boolean } = {}): void {
  beforeAll(async () => {
    // Many sends to one address in a few seconds (the lock-out scenario needs
    // 21), and many failed checks from this one client: lift the per-email
    // send limits and the guessing budget, which are not under test here
    // (see legacy-no-oracle.test.ts and guessing-budget.test.ts).
    current = await startTestEnv({ RATE_LIMIT_EMAIL_BURST: "1000", RATE_LIMIT_EMAIL_DAILY_BURST: "1000", GUESS_LIMIT_CLIENT_BURST: "100000" });
    if (options.secondInstance) second = (await current.startInstance()).url;
  });
  afterAll(async () => {
    await current?.close();
  });
}

/** This file's service. */
export function env(): TestEnv {
  if (!current) throw new Error("useSignInEnv() was not called in this file");
  return current;
}

/** The second instance on the same database, for races across instances. */
export function secondUrl(): string {
  if (!second) throw new Error("useSignInEnv({ secondInstance: true }) was not called in this file");
  return second;
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

export const freshEmail = emailFactory();
export const { mailsTo, waitForMailTo } = mailbox(() => env().smtp);

export const LEGACY_KEYS = ["WasSuccessful", "Value", "Status", "Message", "Errors"];
export const USER_ID = /^user-test-[0-9a-f-]{36}$/;
export const EMAIL_ID = /^email-test-[0-9a-f-]{36}$/;

export function post(
  path: string,
  body: unknown,
  opts: { authorization?: string | null; base?: string } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  const authorization = opts.authorization === undefined ? env().project.authorization : opts.authorization;
  if (authorization !== null) headers.authorization = authorization;
  return fetch(`${opts.base ?? env().url}${path}`, { method: "POST", headers, body: JSON.stringify(body) }).then(answer);
}

export const authenticate = (body: Record<string, unknown>, opts: { authorization?: string | null; base?: string } = {}) =>
  post("/v1/otps/authenticate", body, opts);

export interface Sent {
  readonly email: string;
  readonly emailId: string;
  readonly userId: string;
  readonly code: string;
}

/** login_or_create for `email`, then the code from the mail it caused. */
export async function sendCode(
  email: string,
  extra: Record<string, unknown> = {},
  project: TestProject = env().project,
): Promise<Sent> {
  const before = mailsTo(email).length;
  const res = await post("/v1/otps/email/login_or_create", { email, ...extra }, { authorization: project.authorization });
  expect(res.status, res.text).toBe(200);
  const mail = await waitForMailTo(email, before + 1);
  return { email, emailId: res.body.email_id, userId: res.body.user_id, code: codeIn(mail) };
}

/** A 6-digit code that is not `code`. */
export function wrongCode(code: string, offset = 1): string {
  return String((Number(code) + offset) % 1_000_000).padStart(6, "0");
}

/** A Stytch error body without its per-call request_id. */
export function withoutRequestId(a: Answer): Record<string, unknown> {
  const { request_id: _ignored, ...rest } = a.body as Record<string, unknown>;
  return rest;
}

export function expectRecent(iso: unknown, windowMs = 60_000): number {
  expect(typeof iso).toBe("string");
  const t = Date.parse(iso as string);
  expect(Number.isNaN(t)).toBe(false);
  expect(Math.abs(Date.now() - t)).toBeLessThan(windowMs);
  return t;
}

export async function userStatus(userId: string): Promise<string | undefined> {
  const { rows } = await env().app.db.query<{ status: string }>("SELECT status FROM users WHERE id = $1", [userId]);
  return rows[0]?.status;
}

export async function emailVerified(emailId: string): Promise<boolean | undefined> {
  const { rows } = await env().app.db.query<{ verified: boolean }>("SELECT verified FROM emails WHERE id = $1", [emailId]);
  return rows[0]?.verified;
}

/** The ConnectError a call fails with; fails the test if the call succeeds. */
export async function rejection(call: Promise<unknown>): Promise<ConnectError> {
  try {
    await call;
  } catch (err) {
    expect(err).toBeInstanceOf(ConnectError);
    return err as ConnectError;
  }
  throw new Error("expected the call to fail, but it succeeded");
}

export async function businessJwksOf(businessId: number): Promise<{ keys: never[] }> {
  const res = await fetch(`${env().url}/api/sys/businesses/${businessId}/jwks`);
  expect(res.status).toBe(200);
  return (await res.json()) as { keys: never[] };
}

/** Adds a customer to env's business; returns the address. */
export async function addCustomer(tag: string): Promise<string> {
  const business = await env().tenants.business(String(env().businessId));
  expect(business).toBeDefined();
  const address = freshEmail(tag);
  await addTestUser(env().app.db, business!.id, address);
  return address;
}

/** The legacy send for a customer; returns the code from the mail. */
export async function legacySend(email: string): Promise<string> {
  const before = mailsTo(email).length;
  const res = await fetch(`${env().url}/api/sys/users/sendOtp?email=${encodeURIComponent(email)}&businessId=${env().businessId}`);
  expect(res.status).toBe(200);
  return codeIn(await waitForMailTo(email, before + 1));
}

export const exchange = (body: Record<string, unknown>) => post("/api/sys/users/exchange", body, { authorization: null });

export function expectLegacyOtpError(a: Answer): void {
  expect(a.status, a.text).toBe(400);
  expect(Object.keys(a.body)).toEqual(LEGACY_KEYS);
  expect(a.body.WasSuccessful).toBe(false);
  expect(a.body.Value).toBeNull();
  expect(a.body.Status).toBe(400);
  expect(typeof a.body.Message).toBe("string");
  expect(Object.keys(a.body.Errors ?? {})).toEqual(["otp"]);
  expect(Array.isArray(a.body.Errors.otp)).toBe(true);
  expect(a.body.Errors.otp.length).toBeGreaterThan(0);
}
