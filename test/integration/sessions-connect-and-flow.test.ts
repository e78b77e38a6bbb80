// SessionService over Connect and gRPC, and the whole flow from
// login_or_create to a revoked session. Real Postgres, real SMTP.
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { describe, expect, it } from "vitest";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { SessionService } from "../../gen/otp/v1/otp_service_pb.js";
import { expectStytchError, JWT } from "../support/answers.js";
import {
  authenticateSession,
  jwks,
  revokeSession,
  signIn,
  verify,
} from "../support/sessions.js";
import { env, freshEmail, post, useSignInEnv, waitForMailTo } from "../support/sign-in.js";
import { codeIn } from "../support/smtp.js";

useSignInEnv();

describe.each([
  ["Connect JSON", () => createConnectTransport({ baseUrl: env().url, httpVersion: "1.1", useBinaryFormat: false })],
  ["gRPC", () => createGrpcTransport({ baseUrl: env().url })],
])("SessionService over %s", (_, transport) => {
  it("GetJwks lists the same keys as the REST route", async () => {
    const client = createClient(SessionService, transport());
    const res = await client.getJwks({ projectId: env().project.projectId });
    const rest = await jwks(env().project.projectId);
    expect(res.keys.map((k) => k.kid)).toEqual(rest.body.keys.map((k: { kid: string }) => k.kid));
    expect(res.statusCode).toBe(200);
  });

  it("AuthenticateSession and RevokeSession; afterwards NotFound with session_not_found", async () => {
    const client = createClient(SessionService, transport());
    const auth = { headers: { authorization: env().project.authorization } };
    const signed = await signIn(`session-${_}`.replace(/\W+/g, "-").toLowerCase());

    const res = await client.authenticateSession({ sessionToken: signed.token }, auth);
    expect(res.statusCode).toBe(200);
    expect(res.session?.sessionId).toBe(signed.sessionId);
    expect(res.user?.userId).toBe(signed.sent.userId);
    expect(res.sessionJwt).toMatch(JWT);

    const revoked = await client.revokeSession({ sessionToken: signed.token }, auth);
    expect(revoked.statusCode).toBe(200);

    let err: unknown;
    try {
      await client.authenticateSession({ sessionToken: signed.token }, auth);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.NotFound);
    expect((err as ConnectError).findDetails(ErrorInfoSchema).map((i) => i.reason)).toEqual(["session_not_found"]);
  });
});

describe("full flow", () => {
  it("login_or_create → mail → authenticate (60 min) → authenticate session → revoke → session gone", async () => {
    const email = freshEmail("flow");
    const created = await post("/v1/otps/email/login_or_create", { email });
    expect(created.status, created.text).toBe(200);
    expect(created.body.user_created).toBe(true);

    const mail = await waitForMailTo(email, 1);
    const code = codeIn(mail);

    const signedIn = await post("/v1/otps/authenticate", {
      method_id: created.body.email_id,
      code,
      session_duration_minutes: 60,
    });
    expect(signedIn.status, signedIn.text).toBe(200);
    expect(signedIn.body.user_id).toBe(created.body.user_id);
    const token = signedIn.body.session_token as string;
    const jwt = signedIn.body.session_jwt as string;
    expect(token.length).toBeGreaterThan(0);
    expect((await verify(jwt)).payload.sub).toBe(created.body.user_id);

    const checked = await authenticateSession({ session_token: token });
    expect(checked.status, checked.text).toBe(200);
    expect(checked.body.session.session_id).toBe(signedIn.body.session.session_id);

    const revoked = await revokeSession({ session_token: token });
    expect(revoked.status, revoked.text).toBe(200);

    expectStytchError(await authenticateSession({ session_token: token }), 404, "session_not_found");
    expectStytchError(await authenticateSession({ session_jwt: jwt }), 404, "session_not_found");
  });
});
