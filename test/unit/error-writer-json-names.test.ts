// The legacy envelope names fields as the portal sends them (JSON names);
// the domain names them by proto path. The writer translates with the
// request message's descriptor, so what the portal reads stays the same.
import { describe, expect, it } from "vitest";
import { ExchangeOtpRequestSchema, SendEmailOtpRequestSchema } from "../../gen/otp/v1/otp_service_pb.js";
import { UpsertBusinessRequestSchema } from "../../gen/otp/v1/admin_service_pb.js";
import { DomainError, invalidFields } from "../../src/domain/errors.js";
import { errorShapeOf, jsonPath, writeError } from "../../src/transport/error-writer.js";
import { ApiContract } from "../../src/transport/contract.js";
import type { NodeResponse } from "../../src/transport/http-io.js";

describe("jsonPath: a proto field path in the request's JSON names", () => {
  it.each([
    [SendEmailOtpRequestSchema, "expiration_minutes", "expirationMinutes"],
    [SendEmailOtpRequestSchema, "attributes.ip_address", "attributes.ipAddress"],
    [ExchangeOtpRequestSchema, "business_id", "businessId"],
    [ExchangeOtpRequestSchema, "otp", "otp"],
    [UpsertBusinessRequestSchema, "branding.sender_name", "branding.senderName"],
  ] as const)("%#: %s → %s", (schema, path, json) => {
    expect(jsonPath(schema, path)).toBe(json);
  });

  it("leaves a name the message does not have as the caller sent it", () => {
    expect(jsonPath(SendEmailOtpRequestSchema, "no_such.field_x")).toBe("no_such.field_x");
    expect(jsonPath(undefined, "business_id")).toBe("business_id");
  });
});

/** A response that records what the writer wrote. */
function recorder() {
  const out = { status: 0, headers: {} as Record<string, unknown>, body: "" };
  const res = {
    headersSent: false,
    setHeader: (k: string, v: unknown) => {
      out.headers[k] = v;
    },
    writeHead: (status: number, headers: Record<string, unknown>) => {
      out.status = status;
      Object.assign(out.headers, headers);
    },
    end: (body: string) => {
      out.body = body;
    },
  };
  return { res: res as unknown as NodeResponse, out };
}

describe("the same violation in each contract's words", () => {
  const err = invalidFields([{ field: "business_id", description: "names no known business" }]);

  it("legacy: the Errors map by JSON name", () => {
    const { res, out } = recorder();
    writeError(res, errorShapeOf(ApiContract.LEGACY), err, { request: ExchangeOtpRequestSchema });
    expect(out.status).toBe(400);
    expect(out.body).toBe(
      '{"WasSuccessful":false,"Value":null,"Status":400,"Message":"The request is missing a parameter or has a malformed one.","Errors":{"businessId":["businessId names no known business"]}}',
    );
  });

  it("Stytch: the message by proto path, with the request id", () => {
    const { res, out } = recorder();
    writeError(res, errorShapeOf(ApiContract.STYTCH), err, { requestId: "request-id-1", request: ExchangeOtpRequestSchema });
    expect(JSON.parse(out.body)).toEqual({
      status_code: 400,
      request_id: "request-id-1",
      error_type: "bad_request",
      error_message: "business_id names no known business",
      error_url: "https://stytch.com/docs/api/errors/400#bad_request",
    });
  });

  it("a rate limit says when to retry, in a header, whatever the shape", () => {
    const { res, out } = recorder();
    writeError(res, "plain", new DomainError("rate_limited", "Slow down.", { retryAfterMs: 1_500 }));
    expect(out.status).toBe(429);
    expect(out.headers["retry-after"]).toBe("2");
    expect(out.body).toBe('{"code":"resource_exhausted","message":"Slow down."}');
  });
});
