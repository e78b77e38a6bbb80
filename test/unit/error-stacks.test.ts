// Expected answers are built without a stack trace: an attacker can ask for
// a wrong-credentials or rate-limited answer as fast as the service answers,
// and recording where each was built was the largest single cost of one.
// Internal failures, the ones an operator reads, keep theirs.
import { Code } from "@connectrpc/connect";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { DomainError, withoutStackTrace } from "../../src/domain/errors.js";
import { toConnectError } from "../../src/transport/error-writer.js";
import { TransportError } from "../../src/transport/transport-error.js";

const silent = pino({ level: "silent" });
/** The lines of a stack after its first (the error's name and message). */
const frames = (err: Error) => (err.stack ?? "").split("\n").slice(1);

describe("stack traces of errors", () => {
  it("an expected domain reason records no frames", () => {
    const err = new DomainError("unauthenticated", "Unauthorized credentials.");
    expect(err.stack).toBe("DomainError: Unauthorized credentials.");
    expect(frames(new DomainError("rate_limited", "slow down", { retryAfterMs: 1000 }))).toEqual([]);
  });

  it("an internal failure keeps where it was raised, and a cause keeps its own", () => {
    const cause = new Error("connection refused");
    const err = new DomainError("internal", "The database is unreachable.", {}, { cause });
    expect(frames(err).length).toBeGreaterThan(0);
    expect(frames(err.cause as Error).length).toBeGreaterThan(0);
  });

  it("a transport answer (unknown route, body too large) records no frames", () => {
    expect(frames(new TransportError("route_not_found", "No such route."))).toEqual([]);
  });

  it("the Connect error for an expected reason records no frames; for an internal one it does", () => {
    const refused = toConnectError(new DomainError("unauthenticated", "Unauthorized credentials."), silent);
    expect(refused.code).toBe(Code.Unauthenticated);
    expect(frames(refused)).toEqual([]);
    const broken = toConnectError(new DomainError("internal", "boom"), silent);
    expect(broken.code).toBe(Code.Internal);
    expect(frames(broken).length).toBeGreaterThan(0);
  });

  it("leaves the process's stack depth as it found it, even when building throws", () => {
    const before = Error.stackTraceLimit;
    expect(() =>
      withoutStackTrace(() => {
        throw new Error("while building");
      }),
    ).toThrow("while building");
    new DomainError("invalid_email", "bad");
    expect(Error.stackTraceLimit).toBe(before);
    expect(frames(new Error("ordinary")).length).toBeGreaterThan(0);
  });
});
