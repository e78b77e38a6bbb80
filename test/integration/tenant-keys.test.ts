// Keys per tenant: each project and each business signs with its own keys
// and publishes only those, so a relying party that checks a token against
// its tenant's JWKS never accepts another tenant's token. Attacked as a
// tenant would: take a token of one project and present it, or verify it,
// as another's. Rotation through the admin API (REST and the CLI), and the
// private keys never in clear in the database. Real Postgres, real SMTP.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { createLocalJWKSet, decodeProtectedHeader, type JWK, jwtVerify } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { answer, emailFactory, expectStytchError, mailbox } from "../support/answers.js";
import { addTestUser, startTestEnv, type TestEnv, type TestProject } from "../support/app.js";
import { codeIn } from "../support/smtp.js";

const ADMIN_TOKEN = "tenant-keys-admin-token-0123456789";
let env: TestEnv;
let other: TestProject;
beforeAll(async () => {
  env = await startTestEnv({ ADMIN_TOKEN, GUESS_LIMIT_CLIENT_BURST: "1000" });
  other = await env.createProject("Other tenant");
});
afterAll(async () => {
  await env?.close();
});

const freshEmail = emailFactory();
const { mailsTo, waitForMailTo } = mailbox(() => env.smtp);

type Jwks = { keys: (JWK & { kid: string })[] };

async function projectJwks(projectId: string): Promise<Jwks> {
  const res = await fetch(`${env.url}/v1/sessions/jwks/${projectId}`);
  expect(res.status).toBe(200);
  return (await res.json()) as Jwks;
}

async function businessJwks(businessId: number): Promise<Jwks> {
  const res = await fetch(`${env.url}/api/sys/businesses/${businessId}/jwks`);
  expect(res.status).toBe(200);
  return (await res.json()) as Jwks;
}

/** A session JWT for a fresh user of `project`. */
async function sessionJwt(project: TestProject): Promise<string> {
  const email = freshEmail("jwt");
  const post = (path: string, body: unknown) =>
    fetch(`${env.url}${path}`, {
      method: "POST",
      headers: { authorization: project.authorization, "content-type": "application/json" },
      body: JSON.stringify(body),
    }).then(answer);
  const sent = await post("/v1/otps/email/login_or_create", { email });
  expect(sent.status, sent.text).toBe(200);
  const code = codeIn(await waitForMailTo(email, 1));
  const auth = await post("/v1/otps/authenticate", { method_id: sent.body.email_id, code, session_duration_minutes: 60 });
  expect(auth.status, auth.text).toBe(200);
  return auth.body.session_jwt as string;
}

/** A legacy bearer token for a fresh customer of env's business. */
async function legacyToken(): Promise<string> {
  const business = await env.tenants.business(String(env.businessId));
  const email = freshEmail("legacy");
  await addTestUser(env.app.db, business!.id, email);
  const before = mailsTo(email).length;
  expect((await fetch(`${env.url}/api/sys/users/sendOtp?email=${encodeURIComponent(email)}&businessId=${env.businessId}`)).status).toBe(200);
  const code = codeIn(await waitForMailTo(email, before + 1));
  const res = await fetch(`${env.url}/api/sys/users/exchange`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email, businessId: env.businessId, otp: code }),
  }).then(answer);
  expect(res.status, res.text).toBe(200);
  return res.body.Value as string;
}

const verifies = (jwt: string, jwks: Jwks) =>
  jwtVerify(jwt, createLocalJWKSet(jwks)).then(
    () => true,
    () => false,
  );

const rotate = (body: Record<string, unknown>) =>
  fetch(`${env.url}/admin/v1/signing_keys/rotate`, {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  }).then(answer);

describe("each tenant has its own keys", () => {
  it("two projects and a business publish disjoint key sets, and one's token does not verify with another's", async () => {
    const [mine, theirs] = await Promise.all([sessionJwt(env.project), sessionJwt(other)]);
    const [a, b, biz] = await Promise.all([projectJwks(env.project.projectId), projectJwks(other.projectId), businessJwks(env.businessId)]);
    const kids = [a, b, biz].map((s) => s.keys.map((k) => k.kid));
    expect(new Set(kids.flat()).size).toBe(kids.flat().length);

    expect(await verifies(mine, a)).toBe(true);
    expect(await verifies(theirs, b)).toBe(true);
    // A relying party of project A that checks only the signature rejects project B's token.
    expect(await verifies(theirs, a)).toBe(false);
    expect(await verifies(mine, b)).toBe(false);
    expect(await verifies(mine, biz)).toBe(false);

    // Nor does the service take B's JWT as A's session.
    const res = await fetch(`${env.url}/v1/sessions/authenticate`, {
      method: "POST",
      headers: { authorization: env.project.authorization, "content-type": "application/json" },
      body: JSON.stringify({ session_jwt: theirs }),
    }).then(answer);
    expectStytchError(res, 404, "session_not_found");
  });

  it("an unknown project's JWKS is 404 in Stytch's error shape", async () => {
    for (const id of ["project-test-00000000-0000-4000-8000-000000000000", "nonsense"]) {
      const res = await fetch(`${env.url}/v1/sessions/jwks/${id}`).then(answer);
      expectStytchError(res, 404, "not_found");
    }
  });

  it("legacy tokens are signed by their business's key, with an issuer and audience a relying party can check", async () => {
    const token = await legacyToken();
    const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet(await businessJwks(env.businessId)), {
      issuer: `otp-service/business/${env.businessId}`,
      audience: `business:${env.businessId}`,
    });
    expect(payload.business_id).toBe(env.businessId);
    expect(protectedHeader.alg).toBe("ES256");
    expect(await verifies(token, await projectJwks(env.project.projectId))).toBe(false);

    const unknown = await fetch(`${env.url}/api/sys/businesses/999999999/jwks`).then(answer);
    expect(unknown.status).toBe(404);
    expect(unknown.body).toMatchObject({ WasSuccessful: false, Status: 404 });
  });
});

describe("rotation per tenant", () => {
  it("admin API: a new key signs, the old one stays published; the other tenant is untouched; revoke_previous drops old keys at once", async () => {
    const before = await sessionJwt(env.project);
    const oldKid = decodeProtectedHeader(before).kid!;
    const otherBefore = (await projectJwks(other.projectId)).keys;

    const rotated = await rotate({ project_id: env.project.projectId });
    expect(rotated.status, rotated.text).toBe(200);
    expect(rotated.body.published_kids).toEqual([rotated.body.kid, oldKid]);

    const jwks = await projectJwks(env.project.projectId);
    expect(jwks.keys.map((k) => k.kid)).toEqual([rotated.body.kid, oldKid]);
    const after = await sessionJwt(env.project);
    expect(decodeProtectedHeader(after).kid).toBe(rotated.body.kid);
    expect(await verifies(before, jwks)).toBe(true);
    expect(await verifies(after, jwks)).toBe(true);
    expect((await projectJwks(other.projectId)).keys).toEqual(otherBefore);

    const revoked = await rotate({ project_id: env.project.projectId, revoke_previous: true });
    expect(revoked.status, revoked.text).toBe(200);
    expect(revoked.body.published_kids).toEqual([revoked.body.kid]);
    const now = await projectJwks(env.project.projectId);
    expect(await verifies(after, now)).toBe(false);
    expect(await verifies(before, now)).toBe(false);
    // The service itself no longer accepts a JWT signed by a revoked key.
    const res = await fetch(`${env.url}/v1/sessions/authenticate`, {
      method: "POST",
      headers: { authorization: env.project.authorization, "content-type": "application/json" },
      body: JSON.stringify({ session_jwt: after }),
    }).then(answer);
    expectStytchError(res, 404, "session_not_found");
  });

  it("another instance that read the keys before a rotation verifies a token the new key signed", async () => {
    const second = await env.startInstance();
    // The second instance reads (and caches) the project's keys now.
    expect((await fetch(`${second.url}/v1/sessions/jwks/${other.projectId}`)).status).toBe(200);
    const rotated = await rotate({ project_id: other.projectId });
    expect(rotated.status).toBe(200);
    const jwt = await sessionJwt(other);
    expect(decodeProtectedHeader(jwt).kid).toBe(rotated.body.kid);
    const res = await fetch(`${second.url}/v1/sessions/authenticate`, {
      method: "POST",
      headers: { authorization: other.authorization, "content-type": "application/json" },
      body: JSON.stringify({ session_jwt: jwt }),
    }).then(answer);
    expect(res.status, res.text).toBe(200);
  });

  it("the CLI rotates a business's keys", async () => {
    const before = (await businessJwks(env.businessId)).keys.map((k) => k.kid);
    const { stdout } = await promisify(execFile)("npx", ["tsx", "src/cli/admin.ts", "keys", "rotate", "--business", String(env.businessId), "--json"], {
      env: { ...process.env, OTP_URL: env.url, ADMIN_TOKEN },
    });
    const out = JSON.parse(stdout) as { kid: string; published_kids: string[] };
    expect(out.published_kids).toEqual([out.kid, ...before]);
    expect((await businessJwks(env.businessId)).keys.map((k) => k.kid)).toEqual(out.published_kids);
    expect(decodeProtectedHeader(await legacyToken()).kid).toBe(out.kid);
  }, 60_000);

  it("an unknown tenant or no tenant is refused", async () => {
    expect((await rotate({ project_id: "project-test-00000000-0000-4000-8000-000000000000" })).status).toBe(404);
    expect((await rotate({})).status).toBe(400);
  });
});

describe("private keys at rest", () => {
  it("are stored only sealed: no private JWK member in the database", async () => {
    // Three tenants' key sets read, so each has a stored key whatever ran before.
    await Promise.all([projectJwks(env.project.projectId), projectJwks(other.projectId), businessJwks(env.businessId)]);
    const { rows } = await env.app.db.query<{ private_sealed: Buffer; tenant_id: string }>("SELECT private_sealed, tenant_id FROM signing_keys");
    expect(rows.length).toBeGreaterThanOrEqual(3);
    for (const r of rows) {
      const text = r.private_sealed.toString("latin1");
      expect(text).not.toContain('"d"');
      expect(text).not.toContain('"kty"');
    }
  });
});
