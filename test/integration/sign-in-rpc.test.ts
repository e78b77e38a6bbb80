// AuthenticateOtp and ExchangeOtp over gRPC and Connect: sessions, and
// the error details each protocol carries. Real Postgres, real SMTP.
import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { createLocalJWKSet, jwtVerify } from "jose";
import { describe, expect, it } from "vitest";
import { BadRequestSchema, ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { OtpService } from "../../gen/otp/v1/otp_service_pb.js";
import { JWT, REQUEST_ID } from "../support/answers.js";
import {
  addCustomer,
  businessJwksOf,
  env,
  freshEmail,
  legacySend,
  rejection,
  sendCode,
  useSignInEnv,
  wrongCode,
} from "../support/sign-in.js";

useSignInEnv();

describe("AuthenticateOtp and ExchangeOtp over gRPC and Connect", () => {
  it("AuthenticateOtp over gRPC with the authorization header starts a session", async () => {
    const client = createClient(OtpService, createGrpcTransport({ baseUrl: env().url }));
    const auth = { headers: { authorization: env().project.authorization } };
    const sent = await sendCode(freshEmail("grpc"));

    const missing = await rejection(client.authenticateOtp({ methodId: sent.emailId, code: sent.code }));
    expect(missing.code).toBe(Code.Unauthenticated);

    const res = await client.authenticateOtp({ methodId: sent.emailId, code: sent.code, sessionDurationMinutes: 30 }, auth);
    expect(res.statusCode).toBe(200);
    expect(res.requestId).toMatch(REQUEST_ID);
    expect(res.userId).toBe(sent.userId);
    expect(res.methodId).toBe(sent.emailId);
    expect(res.user?.userId).toBe(sent.userId);
    expect(res.user?.status).toBe("active");
    expect(res.user?.emails.map((e) => [e.emailId, e.email, e.verified])).toEqual([[sent.emailId, sent.email, true]]);
    expect(res.sessionToken.length).toBeGreaterThan(0);
    expect(res.sessionJwt).toMatch(JWT);
    expect(res.session?.userId).toBe(sent.userId);
    expect(res.session?.authenticationFactors.map((f) => [f.type, f.deliveryMethod, f.emailFactor?.emailId])).toEqual([
      ["otp", "email", sent.emailId],
    ]);
    const length = Number(res.session!.expiresAt!.seconds - res.session!.startedAt!.seconds);
    expect(Math.abs(length - 30 * 60)).toBeLessThanOrEqual(2);

    // Spent: the same code again is refused.
    const again = await rejection(client.authenticateOtp({ methodId: sent.emailId, code: sent.code }, auth));
    expect(again.findDetails(ErrorInfoSchema).map((i) => i.reason)).toEqual(["unable_to_auth_otp_code"]);
  });

  it("AuthenticateOtp over Connect JSON: NotFound with otp_code_not_found for a wrong code, then success", async () => {
    const client = createClient(
      OtpService,
      createConnectTransport({ baseUrl: env().url, httpVersion: "1.1", useBinaryFormat: false }),
    );
    const auth = { headers: { authorization: env().project.authorization } };
    const sent = await sendCode(freshEmail("connect"));

    const err = await rejection(client.authenticateOtp({ methodId: sent.emailId, code: wrongCode(sent.code) }, auth));
    expect(err.code).toBe(Code.NotFound);
    expect(err.findDetails(ErrorInfoSchema).map((i) => i.reason)).toEqual(["otp_code_not_found"]);

    const bad = await rejection(client.authenticateOtp({ methodId: sent.emailId, code: "12a456" }, auth));
    expect(bad.code).toBe(Code.InvalidArgument);

    const res = await client.authenticateOtp({ methodId: sent.emailId, code: sent.code }, auth);
    expect(res.statusCode).toBe(200);
    expect(res.userId).toBe(sent.userId);
    expect(res.methodId).toBe(sent.emailId);
    expect(res.session).toBeUndefined();
    expect(res.sessionToken).toBe("");
    expect(res.sessionJwt).toBe("");
  });

  it.each([
    ["Connect JSON", () => createConnectTransport({ baseUrl: env().url, httpVersion: "1.1", useBinaryFormat: false })],
    ["gRPC", () => createGrpcTransport({ baseUrl: env().url })],
  ])("ExchangeOtp over %s (public) exchanges a customer's code for a JWT", async (name, transport) => {
    const customer = await addCustomer(`exchange-${name.replace(/\W+/g, "-").toLowerCase()}`);
    const code = await legacySend(customer);
    const client = createClient(OtpService, transport());
    const res = await client.exchangeOtp({ email: customer, businessId: BigInt(env().businessId), otp: code });
    expect(res.wasSuccessful).toBe(true);
    expect(res.status).toBe(200);
    expect(res.value).toMatch(JWT);
    expect(res.message).toBeUndefined();

    const jwks = createLocalJWKSet(await businessJwksOf(env().businessId));
    const { payload } = await jwtVerify(res.value!, jwks);
    expect(payload.email).toBe(customer);

    // Spent: over Connect a refusal is an error, not an envelope.
    const again = await rejection(client.exchangeOtp({ email: customer, businessId: BigInt(env().businessId), otp: code }));
    expect(again.code).toBe(Code.InvalidArgument);
    const [badRequest] = again.findDetails(BadRequestSchema);
    expect(badRequest?.fieldViolations.map((v) => v.field)).toEqual(["otp"]);
  });
});
