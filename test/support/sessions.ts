// Sessions on top of the sign-in kit: an address signed in with a session,
// the session routes, and the JWT checked against the public JWKS route.
import type { TestProject } from "./app.js";
import { createLocalJWKSet, jwtVerify, type JWTPayload } from "jose";
import { expect } from "vitest";
import { answer, type Answer, type Json } from "./answers.js";
import { env, freshEmail, post, type Sent, sendCode } from "./sign-in.js";

export const B64URL_32 = /^[A-Za-z0-9_-]{43}$/;
export const SESSION_CLAIM = "https://stytch.com/session";

export interface SignedIn {
  readonly sent: Sent;
  /** The AuthenticateOtp answer. */
  readonly body: Json;
  readonly token: string;
  readonly jwt: string;
  readonly sessionId: string;
}

/** A fresh address signed in with a session. */
export async function signIn(tag: string, extra: Record<string, unknown> = {}, project: TestProject = env().project): Promise<SignedIn> {
  const sent = await sendCode(freshEmail(tag), {}, project);
  const res = await post(
    "/v1/otps/authenticate",
    { method_id: sent.emailId, code: sent.code, session_duration_minutes: 60, ...extra },
    { authorization: project.authorization },
  );
  expect(res.status, res.text).toBe(200);
  return {
    sent,
    body: res.body,
    token: res.body.session_token,
    jwt: res.body.session_jwt,
    sessionId: res.body.session?.session_id,
  };
}

export const authenticateSession = (body: Record<string, unknown>, authorization?: string | null) =>
  post("/v1/sessions/authenticate", body, { authorization });
export const revokeSession = (body: Record<string, unknown>, authorization?: string | null) =>
  post("/v1/sessions/revoke", body, { authorization });

export async function jwks(projectId: string): Promise<Answer> {
  return answer(await fetch(`${env().url}/v1/sessions/jwks/${projectId}`));
}

export async function verify(jwt: string, projectId = env().project.projectId) {
  const set = (await jwks(projectId)).body;
  return jwtVerify(jwt, createLocalJWKSet(set), { algorithms: ["ES256"] });
}

export function audiences(payload: JWTPayload): string[] {
  return Array.isArray(payload.aud) ? payload.aud : payload.aud === undefined ? [] : [payload.aud];
}

export function closeInTime(a: unknown, b: unknown, toleranceMs = 1_000): void {
  expect(typeof a).toBe("string");
  expect(typeof b).toBe("string");
  const ta = Date.parse(a as string);
  const tb = Date.parse(b as string);
  expect(Number.isNaN(ta), String(a)).toBe(false);
  expect(Number.isNaN(tb), String(b)).toBe(false);
  expect(Math.abs(ta - tb), `${String(a)} vs ${String(b)}`).toBeLessThanOrEqual(toleranceMs);
}
