// The legacy portal's POST /api/sys/users/exchange: the success envelope
// with a JWT signed by the business's key, one 400 for every wrong code,
// and the token's header. Real Postgres, real SMTP.
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from "jose";
import { describe, expect, it } from "vitest";
import { JWT } from "../support/answers.js";
import {
  addCustomer,
  businessJwksOf,
  env,
  exchange,
  expectLegacyOtpError,
  freshEmail,
  LEGACY_KEYS,
  legacySend,
  useSignInEnv,
  wrongCode,
} from "../support/sign-in.js";

useSignInEnv();

describe("legacy POST /api/sys/users/exchange", () => {
  it("sendOtp, then exchange: the success envelope with a JWT for the customer and business", async () => {
    const customer = await addCustomer("legacy-ok");
    const code = await legacySend(customer);
    const res = await exchange({ email: customer, businessId: env().businessId, otp: code });
    expect(res.status, res.text).toBe(200);
    expect(Object.keys(res.body)).toEqual(LEGACY_KEYS);
    expect(res.body).toEqual({ WasSuccessful: true, Value: res.body.Value, Status: 200, Message: null, Errors: null });
    expect(res.body.Value).toMatch(JWT);

    const jwks = createLocalJWKSet(await businessJwksOf(env().businessId));
    const { payload, protectedHeader } = await jwtVerify(res.body.Value, jwks, {
      issuer: `otp-service/business/${env().businessId}`,
      audience: `business:${env().businessId}`,
    });
    expect(protectedHeader.alg).toBe("ES256");
    expect(typeof payload.sub).toBe("string");
    expect(payload.sub!.length).toBeGreaterThan(0);
    expect(payload.email).toBe(customer);
    expect(String(payload.business_id)).toBe(String(env().businessId));

    // The same code again: spent.
    expectLegacyOtpError(await exchange({ email: customer, businessId: env().businessId, otp: code }));
  });

  it("wrong code, reused code and unknown email all answer the same 400 envelope naming otp", async () => {
    const customer = await addCustomer("legacy-wrong");
    const code = await legacySend(customer);
    const wrong = await exchange({ email: customer, businessId: env().businessId, otp: wrongCode(code) });
    expectLegacyOtpError(wrong);

    const unknown = await exchange({ email: freshEmail("stranger"), businessId: env().businessId, otp: code });
    expectLegacyOtpError(unknown);
    expect(unknown.text).toBe(wrong.text);

    const ok = await exchange({ email: customer, businessId: env().businessId, otp: code });
    expect(ok.status, ok.text).toBe(200);
    const reused = await exchange({ email: customer, businessId: env().businessId, otp: code });
    expectLegacyOtpError(reused);
    expect(reused.text).toBe(wrong.text);
  });

  it("missing businessId → 400 envelope naming businessId", async () => {
    const res = await exchange({ email: env().customer, otp: "123456" });
    expect(res.status, res.text).toBe(400);
    expect(Object.keys(res.body)).toEqual(LEGACY_KEYS);
    expect(res.body.WasSuccessful).toBe(false);
    expect(res.body.Status).toBe(400);
    expect(Object.keys(res.body.Errors ?? {})).toEqual(["businessId"]);
  });
});

describe("legacy JWT header", () => {
  it("names its key (kid), which the JWKS lists, and ES256", async () => {
    const customer = await addCustomer("kid");
    const code = await legacySend(customer);
    const res = await exchange({ email: customer, businessId: env().businessId, otp: code });
    expect(res.status, res.text).toBe(200);
    const header = decodeProtectedHeader(res.body.Value);
    expect(header.alg).toBe("ES256");
    expect(typeof header.kid).toBe("string");
    const keys = (await businessJwksOf(env().businessId)).keys as { kid: string }[];
    expect(keys.map((k) => k.kid)).toContain(header.kid);
  });
});
