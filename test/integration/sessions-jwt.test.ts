// The session JWT and its keys: the public JWKS route (and GetJwks over
// Connect), the JWT verified with a standard JOSE library, its Stytch and
// custom claims, and claims refused. Real Postgres, real SMTP.
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { decodeProtectedHeader } from "jose";
import { describe, expect, it } from "vitest";
import { SessionService } from "../../gen/otp/v1/otp_service_pb.js";
import { expectStytchError } from "../support/answers.js";
import {
  audiences,
  B64URL_32,
  closeInTime,
  jwks,
  SESSION_CLAIM,
  signIn,
  verify,
} from "../support/sessions.js";
import { env, freshEmail, post, sendCode, useSignInEnv } from "../support/sign-in.js";

useSignInEnv();

describe("GET /v1/sessions/jwks/{project_id}", () => {
  it("is public and answers the P-256 signing keys in JWK form", async () => {
    const res = await jwks(env().project.projectId);
    expect(res.status, res.text).toBe(200);
    expect(Object.keys(res.body).sort()).toEqual(["keys", "request_id", "status_code"]);
    expect(res.body.status_code).toBe(200);
    expect(res.body.request_id).toMatch(/^request-id-(test|live)-[0-9a-f-]{36}$/);
    expect(res.body.keys.length).toBeGreaterThanOrEqual(1);
    for (const key of res.body.keys) {
      expect(Object.keys(key).sort()).toEqual(["alg", "crv", "kid", "kty", "use", "x", "y"]);
      expect(key).toMatchObject({ kty: "EC", crv: "P-256", alg: "ES256", use: "sig" });
      expect(key.x).toMatch(B64URL_32);
      expect(key.y).toMatch(B64URL_32);
      expect(typeof key.kid).toBe("string");
      expect(key.kid.length).toBeGreaterThan(0);
      // Public keys only.
      expect(key).not.toHaveProperty("d");
    }
  });

  it("GetJwks over Connect JSON, without authorization, answers the same keys", async () => {
    const client = createClient(
      SessionService,
      createConnectTransport({ baseUrl: env().url, httpVersion: "1.1", useBinaryFormat: false }),
    );
    const res = await client.getJwks({ projectId: env().project.projectId });
    expect(res.statusCode).toBe(200);
    expect(res.requestId.length).toBeGreaterThan(0);
    const rest = (await jwks(env().project.projectId)).body;
    expect(res.keys.map((k) => ({ kty: k.kty, crv: k.crv, x: k.x, y: k.y, kid: k.kid, alg: k.alg, use: k.use }))).toEqual(
      rest.keys,
    );
  });
});

describe("the session JWT", () => {
  it("verifies against the JWKS and carries the Stytch claims and the custom claims", async () => {
    const customClaims = { role: "admin", org: { id: 42, name: "Acme", tags: ["a", "b"] } };
    const attributes = { ip_address: "198.51.100.4", user_agent: "UA-jwt" };
    const signed = await signIn("jwt", { session_custom_claims: customClaims, attributes });
    const session = signed.body.session;
    const projectId = env().project.projectId;

    expect(Object.keys(session).sort()).toEqual(
      [
        "attributes",
        "authentication_factors",
        "custom_claims",
        "expires_at",
        "last_accessed_at",
        "session_id",
        "started_at",
        "user_id",
      ].sort(),
    );
    expect(session.custom_claims).toEqual(customClaims);

    const header = decodeProtectedHeader(signed.jwt);
    expect(header.alg).toBe("ES256");
    expect(typeof header.kid).toBe("string");
    const keys = (await jwks(projectId)).body.keys as { kid: string }[];
    expect(keys.map((k) => k.kid)).toContain(header.kid);

    const { payload, protectedHeader } = await verify(signed.jwt);
    expect(protectedHeader.kid).toBe(header.kid);
    expect(payload.sub).toBe(signed.sent.userId);
    expect(audiences(payload)).toContain(projectId);
    expect(payload.iss).toBe(`stytch.com/${projectId}`);
    expect(typeof payload.iat).toBe("number");
    expect(payload.exp! - payload.iat!).toBe(300);
    expect(Math.abs(payload.iat! - Date.now() / 1000)).toBeLessThan(60);

    const claim = payload[SESSION_CLAIM] as Record<string, unknown>;
    expect(claim).toBeTypeOf("object");
    expect(Object.keys(claim).sort()).toEqual(
      ["attributes", "authentication_factors", "expires_at", "id", "last_accessed_at", "started_at"].sort(),
    );
    expect(claim.id).toBe(signed.sessionId);
    closeInTime(claim.started_at, session.started_at);
    closeInTime(claim.last_accessed_at, session.last_accessed_at);
    closeInTime(claim.expires_at, session.expires_at);
    expect(claim.attributes).toEqual(attributes);
    const factors = claim.authentication_factors as Record<string, unknown>[];
    expect(factors).toHaveLength(1);
    expect(factors[0]).toMatchObject({
      type: "otp",
      delivery_method: "email",
      email_factor: { email_id: signed.sent.emailId, email_address: signed.sent.email },
    });
    closeInTime(factors[0]!.last_authenticated_at, session.authentication_factors[0].last_authenticated_at);

    // Custom claims sit at the top level.
    expect(payload.role).toBe("admin");
    expect(payload.org).toEqual(customClaims.org);
  });

  it("a JWT altered after signing does not verify", async () => {
    const signed = await signIn("tamper");
    const [h, p, s] = signed.jwt.split(".");
    const claims = JSON.parse(Buffer.from(p!, "base64url").toString("utf8"));
    claims.sub = "user-test-00000000-0000-0000-0000-000000000000";
    const forged = `${h}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.${s}`;
    await expect(verify(forged)).rejects.toThrow();
    await expect(verify(signed.jwt)).resolves.toBeDefined();
  });

  it("custom claims over 4 KB → 400 bad_request", async () => {
    const sent = await sendCode(freshEmail("big-claims"));
    const res = await post("/v1/otps/authenticate", {
      method_id: sent.emailId,
      code: sent.code,
      session_duration_minutes: 60,
      session_custom_claims: { blob: "x".repeat(4_200) },
    });
    expectStytchError(res, 400, "bad_request");
  });

  it.each([
    ["sub", { sub: "someone-else" }],
    ["iss", { iss: "evil.example" }],
    ["aud", { aud: "another-project" }],
    ["exp", { exp: 4_102_444_800 }],
    [SESSION_CLAIM, { [SESSION_CLAIM]: { id: "forged" } }],
  ])("a custom claim overriding the reserved %s → 400 bad_request", async (_name, claims) => {
    const sent = await sendCode(freshEmail("reserved"));
    const res = await post("/v1/otps/authenticate", {
      method_id: sent.emailId,
      code: sent.code,
      session_duration_minutes: 60,
      session_custom_claims: claims,
    });
    expectStytchError(res, 400, "bad_request");
  });
});
