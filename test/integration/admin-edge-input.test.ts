// AdminService input that used to end in an internal error: a time range
// no database can hold (only a binary message can carry one: JSON stops at
// the years 0001–9999), and one address added by many calls at once.
// Each is the caller's answer, never a 500. Real Postgres.
import { create } from "@bufbuild/protobuf";
import { TimestampSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { describe, expect, it } from "vitest";
import { AdminService } from "../../gen/otp/v1/admin_service_pb.js";
import { env, freshBusinessId, freshEmail, freshName, TOKEN, useAdminTestEnv } from "../support/admin-api.js";

useAdminTestEnv();

const binaryClient = () =>
  createClient(
    AdminService,
    createConnectTransport({
      baseUrl: env().url,
      httpVersion: "1.1",
      useBinaryFormat: true,
      interceptors: [
        (next) => (req) => {
          req.header.set("authorization", `Bearer ${TOKEN}`);
          return next(req);
        },
      ],
    }),
  );

async function codeOf(call: Promise<unknown>): Promise<Code | "ok"> {
  try {
    await call;
    return "ok";
  } catch (err) {
    return ConnectError.from(err).code;
  }
}

describe("ListAuditEvents over Connect binary", () => {
  it.each([
    ["since 10^17 s (past JavaScript's dates)", { since: create(TimestampSchema, { seconds: 10n ** 17n }) }],
    ["since −8·10^12 s (before Postgres's)", { since: create(TimestampSchema, { seconds: -8_000_000_000_000n }) }],
    ["until 10^12 s (after the year 9999)", { until: create(TimestampSchema, { seconds: 1_000_000_000_000n }) }],
  ])("%s → invalid_argument naming the field", async (_name, range) => {
    const admin = binaryClient();
    const businessId = BigInt(freshBusinessId());
    await admin.upsertBusiness({ businessId, name: freshName("Audit range") });
    const err = await admin.listAuditEvents({ tenant: { case: "businessId", value: businessId }, ...range }).then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );
    expect(err?.code, String(err)).toBe(Code.InvalidArgument);
    expect(err?.message).toMatch(/since|until/);
  });
});

describe("AddUser", () => {
  it.each([1, 2, 3, 4, 5])("the same new address added by 40 calls at once (round %i): every call answers, all with the one user", async () => {
    const admin = binaryClient();
    const businessId = BigInt(freshBusinessId());
    await admin.upsertBusiness({ businessId, name: freshName("Concurrent add") });
    const email = freshEmail("added-at-once");
    const answers = await Promise.allSettled(
      Array.from({ length: 40 }, () => admin.addUser({ tenant: { case: "businessId", value: businessId }, email })),
    );
    const failed = answers.filter((a) => a.status === "rejected").map((a) => String((a as PromiseRejectedResult).reason));
    expect(failed).toEqual([]);
    const users = new Set(answers.map((a) => (a as PromiseFulfilledResult<{ userId: string }>).value.userId));
    expect(users.size).toBe(1);
    expect(answers.filter((a) => (a as PromiseFulfilledResult<{ created: boolean }>).value.created)).toHaveLength(1);
    expect(await codeOf(admin.listUsers({ tenant: { case: "businessId", value: businessId } }))).toBe("ok");
  });
});
