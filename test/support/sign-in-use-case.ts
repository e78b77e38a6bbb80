// The SignIn use case wired to in-memory fakes of its ports and a fake
// clock, for unit tests: a project, a policy, and helpers to issue a code
// and to check one.
import { expect } from "vitest";
import { DomainError } from "../../src/domain/errors.js";
import { Secrets } from "../../src/domain/secrets.js";
import { type AuthenticateRequest, SignIn, type SignInPolicy } from "../../src/domain/sign-in.js";
import { TenantKeys } from "../../src/domain/signing-keys.js";
import type { TenantStore } from "../../src/domain/tenants.js";
import { FakeClock } from "./fake-clock.js";
import { unitProject } from "./fake-tenants.js";
import { FakeKeyStore, FakeSignInStore } from "./fake-sign-in-store.js";

export const secrets = new Secrets({ id: 1, secret: "unit-test-pepper-0123456789abcdef" });
export const project = unitProject;
export const POLICY: SignInPolicy = {
  attempts: { perCode: 3, lockThreshold: 5, lockMinutes: 60 },
  guessLimit: { burst: 100, periodMs: 36_000 },
  legacyTokenTtlMinutes: 60,
  legacyMinResponseMs: 0,
};
export const MINUTE = 60_000;
const noTenants: TenantStore = { projectCredentials: async () => undefined, business: async () => undefined };

export function setup(policy: Partial<SignInPolicy> = {}) {
  const clock = new FakeClock();
  const store = new FakeSignInStore(secrets);
  const keys = new TenantKeys(new FakeKeyStore(), noTenants, secrets, clock, { retentionMinutes: 60, cacheTtlMs: 60_000 });
  const signIn = new SignIn(store, secrets, keys, clock, { ...POLICY, ...policy });
  const issue = (code = "123456", address = "jane@example.com", tenant = project) =>
    store.issueCode(tenant.id, address, code, { now: clock.now(), ttlMs: 10 * MINUTE, ipAddress: "203.0.113.9", userAgent: "UA" });
  const authenticate = (methodId: string, code: string, over: Partial<AuthenticateRequest> = {}) =>
    signIn.authenticateOtp({
      tenant: project,
      methodId,
      code,
      client: { ipAddress: "203.0.113.9", userAgent: "UA" },
      peer: undefined,
      match: {},
      sessionDurationMinutes: undefined,
      existing: {},
      customClaims: undefined,
      ...over,
    });
  return { clock, store, keys, signIn, issue, authenticate };
}

/** The DomainError a call fails with. */
export async function refusal(call: Promise<unknown>): Promise<DomainError> {
  const err = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DomainError);
  return err as DomainError;
}
