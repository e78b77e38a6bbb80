// A unary call's context as the REST routes and the unary shortcut build it:
// the same contract as connect-es's createHandlerContext for what handlers
// and interceptors see (signal, deadline, headers, values).
import { Code, ConnectError, createContextKey, createContextValues } from "@connectrpc/connect";
import { afterEach, describe, expect, it, vi } from "vitest";
import { OtpService } from "../../gen/otp/v1/otp_service_pb.js";
import { createCallContext } from "../../src/transport/call-context.js";

const method = OtpService.method.sendEmailOtp;
const base = { service: OtpService, method, protocolName: "grpc", requestMethod: "POST", url: "http://localhost/otp.v1.OtpService/SendEmailOtp" };

afterEach(() => {
  vi.useRealTimers();
});

describe("a unary call's context", () => {
  it("aborts its signal with deadline_exceeded when the caller's deadline passes, and counts down to it", () => {
    vi.useFakeTimers();
    const ctx = createCallContext({ ...base, timeoutMs: 1_000, requestHeader: new Headers() });
    vi.advanceTimersByTime(400);
    expect(ctx.timeoutMs()).toBe(600);
    expect(ctx.signal.aborted).toBe(false);
    vi.advanceTimersByTime(600);
    expect(ctx.signal.aborted).toBe(true);
    expect(ConnectError.from(ctx.signal.reason).code).toBe(Code.DeadlineExceeded);
  });

  it("is aborted at once when the deadline has already passed", () => {
    const ctx = createCallContext({ ...base, timeoutMs: 0, requestHeader: new Headers() });
    expect(ConnectError.from(ctx.signal.reason).code).toBe(Code.DeadlineExceeded);
  });

  it("has no deadline when the caller gave none", () => {
    vi.useFakeTimers();
    const ctx = createCallContext({ ...base, requestHeader: new Headers() });
    expect(ctx.timeoutMs()).toBeUndefined();
    vi.advanceTimersByTime(24 * 3_600_000);
    expect(ctx.signal.aborted).toBe(false);
  });

  it("keeps the first reason it was aborted for, and abort stops the deadline's timer", () => {
    vi.useFakeTimers();
    const gone = new ConnectError("the client went away", Code.Canceled);
    const ctx = createCallContext({ ...base, timeoutMs: 1_000, requestHeader: new Headers() });
    ctx.abort(gone);
    expect(vi.getTimerCount()).toBe(0);
    ctx.abort(new Error("later"));
    expect(ctx.signal.reason).toBe(gone);
  });

  it("hands handlers the request headers and context values as given, and response headers and trailers to fill", () => {
    const requestHeader = new Headers({ authorization: "Basic x" });
    const key = createContextKey("none");
    const values = createContextValues().set(key, "request-1");
    const ctx = createCallContext({ ...base, requestHeader, contextValues: values, responseTrailer: new Headers({ "grpc-status": "0" }) });
    expect(ctx.requestHeader).toBe(requestHeader);
    expect(ctx.values.get(key)).toBe("request-1");
    expect(ctx.responseTrailer.get("grpc-status")).toBe("0");
    ctx.responseHeader.set("retry-after", "1");
    expect([...ctx.responseHeader]).toEqual([["retry-after", "1"]]);
    expect(ctx).toMatchObject({ service: OtpService, method, protocolName: "grpc", requestMethod: "POST" });
  });
});
