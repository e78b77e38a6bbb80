// The RPCs in process, through Connect's router transport: the real
// interceptors (errors, auth, validation, in the server's order) and the real
// handlers on real storage in a fresh database; no HTTP server.
import { Code, ConnectError, createClient, createRouterTransport, type Client } from "@connectrpc/connect";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BadRequestSchema, ErrorInfoSchema, RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { OtpService } from "../../gen/otp/v1/otp_service_pb.js";
import { loadConfig } from "../../src/config.js";
import { Secrets } from "../../src/domain/secrets.js";
import type { Db } from "../../src/storage/db.js";
import { pruneRateLimits } from "../../src/storage/otp-store.js";
import { createServices } from "../../src/services.js";
import { addTestUser, createTestBusiness, createTestProject } from "../support/app.js";
import { createMigratedDatabase, type TestDatabase } from "../support/database.js";

const PEPPER = "rpc-test-pepper-0123456789abcdef0123456789";

let database: TestDatabase;
let db: Db;
let client: Client<typeof OtpService>;
let authorization: string;
let wrongAuthorization: string;
let businessId: bigint;

beforeAll(async () => {
  const migrated = await createMigratedDatabase(4);
  database = migrated;
  db = migrated.db;
  const config = loadConfig({ DATABASE_URL: database.url, OTP_PEPPER: PEPPER, SMTP_URL: "smtp://127.0.0.1:25" });

  // The same services and interceptors build() serves.
  const secrets = new Secrets(config.pepper!, config.previousPeppers);
  const { services, interceptors } = await createServices(
    db,
    config,
    secrets,
    pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" }),
    undefined,
  );
  // No contextValues: handlers see callInfoKey's default (no client IP).
  const transport = createRouterTransport(
    (router) => {
      for (const s of services) s.addTo(router);
    },
    { router: { interceptors } },
  );
  client = createClient(OtpService, transport);

  const { projectId, secret, authorization: basic } = await createTestProject(db);
  authorization = basic;
  wrongAuthorization = `Basic ${Buffer.from(`${projectId}:${secret}-wrong`).toString("base64")}`;

  businessId = 4242n;
  await addTestUser(db, await createTestBusiness(db, businessId), "customer@example.com");
});

afterAll(async () => {
  await database?.drop();
});

/** The ConnectError a call fails with (fails the test if it succeeds). */
async function failureOf(call: Promise<unknown>): Promise<ConnectError> {
  const err = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, "expected the call to fail").toBeInstanceOf(ConnectError);
  return err as ConnectError;
}

function errorReason(err: ConnectError): string | undefined {
  return err.findDetails(ErrorInfoSchema)[0]?.reason;
}

function violatedFields(err: ConnectError): string[] {
  return err.findDetails(BadRequestSchema).flatMap((d) => d.fieldViolations.map((v) => v.field));
}

describe("authentication (Stytch methods)", () => {
  it("SendEmailOtp without authorization is Unauthenticated, before validation runs", async () => {
    const err = await failureOf(client.sendEmailOtp({ email: "bad" }));
    expect(err.code).toBe(Code.Unauthenticated);
    expect(err.rawMessage).toMatch(/Authorization header/);
    expect(errorReason(err)).toBe("unauthorized_credentials");
    expect(violatedFields(err)).toEqual([]);
  });

  it("a malformed Authorization header is Unauthenticated", async () => {
    const err = await failureOf(
      client.loginOrCreateEmailOtp({ email: "a@example.com" }, { headers: { authorization: "Bearer abc" } }),
    );
    expect(err.code).toBe(Code.Unauthenticated);
  });

  it("a wrong secret is Unauthenticated", async () => {
    const err = await failureOf(
      client.loginOrCreateEmailOtp({ email: "a@example.com" }, { headers: { authorization: wrongAuthorization } }),
    );
    expect(err.code).toBe(Code.Unauthenticated);
    expect(err.rawMessage).toMatch(/Unauthorized credentials/);
    expect(errorReason(err)).toBe("unauthorized_credentials");
  });
});

describe("validation", () => {
  it("an authenticated SendEmailOtp with an invalid email is InvalidArgument naming email", async () => {
    const err = await failureOf(client.sendEmailOtp({ email: "bad" }, { headers: { authorization } }));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(violatedFields(err)).toEqual(["email"]);
    expect(err.findDetails(BadRequestSchema)[0]!.fieldViolations[0]!.description).toBe(
      "email is not a valid email address",
    );
    expect(errorReason(err)).toBe("invalid_email");
    expect(err.rawMessage).toBe("email is not a valid email address");
  });

  it("reports every violated field, nested ones by their proto path", async () => {
    const err = await failureOf(
      client.loginOrCreateEmailOtp(
        { email: "", expirationMinutes: 11, attributes: { ipAddress: "nope" } },
        { headers: { authorization } },
      ),
    );
    expect(err.code).toBe(Code.InvalidArgument);
    expect(violatedFields(err)).toEqual(["email", "expiration_minutes", "attributes.ip_address"]);
    expect(errorReason(err)).toBe("bad_request");
  });
});

describe("LoginOrCreateEmailOtp", () => {
  it("creates the user the first time and finds it the second", async () => {
    const email = `new-${Date.now()}@example.com`;
    const first = await client.loginOrCreateEmailOtp({ email }, { headers: { authorization } });
    expect(first.userCreated).toBe(true);
    expect(first.statusCode).toBe(200);
    expect(first.userId).toMatch(/^user-test-[0-9a-f-]{36}$/);
    expect(first.emailId).toMatch(/^email-test-[0-9a-f-]{36}$/);
    expect(first.requestId).toMatch(/^request-id-test-/);

    // Differently cased: the same address.
    const second = await client.loginOrCreateEmailOtp({ email: email.toUpperCase() }, { headers: { authorization } });
    expect(second.userCreated).toBe(false);
    expect(second.userId).toBe(first.userId);
    expect(second.emailId).toBe(first.emailId);

    // SendEmailOtp now finds the address.
    const sent = await client.sendEmailOtp({ email }, { headers: { authorization } });
    expect(sent.userId).toBe(first.userId);
    expect(sent.emailId).toBe(first.emailId);
  });

  it("SendEmailOtp for an address the project does not have is NotFound", async () => {
    const err = await failureOf(client.sendEmailOtp({ email: "nobody@example.com" }, { headers: { authorization } }));
    expect(err.code).toBe(Code.NotFound);
    expect(errorReason(err)).toBe("email_not_found");
  });
});

describe("SendOtp (legacy, no authentication)", () => {
  it("an unknown business is InvalidArgument naming business_id", async () => {
    const err = await failureOf(client.sendOtp({ email: "customer@example.com", businessId: 999_999n }));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(violatedFields(err)).toEqual(["business_id"]);
    expect(err.rawMessage).toBe("business_id names no known business");
  });

  it("a known business answers success for a customer and a stranger alike", async () => {
    await expect(client.sendOtp({ email: "customer@example.com", businessId })).resolves.toMatchObject({
      wasSuccessful: true,
      status: 200,
    });
    await expect(client.sendOtp({ email: "stranger@example.com", businessId })).resolves.toMatchObject({
      wasSuccessful: true,
      status: 200,
    });
  });
});

describe("rate limits", () => {
  it("the 4th send to one email within the period is ResourceExhausted with RetryInfo", async () => {
    const email = `limited-${Date.now()}@example.com`;
    for (let i = 0; i < 3; i++) {
      await client.loginOrCreateEmailOtp({ email }, { headers: { authorization } });
    }
    const err = await failureOf(client.loginOrCreateEmailOtp({ email }, { headers: { authorization } }));
    expect(err.code).toBe(Code.ResourceExhausted);
    expect(errorReason(err)).toBe("too_many_requests");

    const [retry] = err.findDetails(RetryInfoSchema);
    expect(retry?.retryDelay).toBeDefined();
    // Three sends spaced 20 s apart were charged at once: the next slot is ~20 s away.
    const seconds = Number(retry!.retryDelay!.seconds);
    expect(seconds).toBeGreaterThanOrEqual(15);
    expect(seconds).toBeLessThanOrEqual(20);
    expect(err.metadata.get("retry-after")).toBe(String(seconds));

    // Another address of the same project is not limited.
    await expect(
      client.loginOrCreateEmailOtp({ email: `other-${email}` }, { headers: { authorization } }),
    ).resolves.toMatchObject({ userCreated: true });
  });
});

describe("rate-limit row pruning", () => {
  it("drops only rows whose bucket has been full again for a minute", async () => {
    await db.query(
      "INSERT INTO rate_limits (key, tat) VALUES ('prune:old', now() - interval '2 minutes'), ('prune:live', now() + interval '10 seconds')",
    );
    expect(await pruneRateLimits(db)).toBeGreaterThanOrEqual(1);
    const { rows } = await db.query("SELECT key FROM rate_limits WHERE key LIKE 'prune:%' ORDER BY key");
    expect(rows.map((r) => r.key)).toEqual(["prune:live"]);
  });
});
