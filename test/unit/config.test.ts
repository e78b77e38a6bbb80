// loadConfig: defaults, deep freezing, and a ConfigError naming the variable
// at fault for every malformed value.
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config.js";

const PEPPER = "p".repeat(32);
const OLD_PEPPER_A = "a".repeat(32);
const OLD_PEPPER_B = "b".repeat(40);

/** The ConfigError loadConfig throws for env (fails the test if none is thrown). */
function configErrorOf(env: Record<string, string>): ConfigError {
  let thrown: unknown;
  try {
    loadConfig(env);
  } catch (err) {
    thrown = err;
  }
  expect(thrown, `loadConfig(${JSON.stringify(env)}) should throw`).toBeInstanceOf(ConfigError);
  return thrown as ConfigError;
}

describe("loadConfig defaults", () => {
  const config = loadConfig({});

  it("listens on 127.0.0.1:8080", () => {
    expect(config.host).toBe("127.0.0.1");
    expect(config.port).toBe(8080);
  });

  it("uses the documented rate limits", () => {
    expect(config.limits).toEqual({
      email: { burst: 3, periodMs: 20_000 },
      ip: { burst: 30, periodMs: 2_000 },
      tenant: { burst: 1000, periodMs: 10 },
      tenantShards: 16,
      emailDaily: { burst: 20, periodMs: 4_320_000 },
    });
    expect(config.guessLimit).toEqual({ burst: 100, periodMs: 36_000 });
  });

  it("runs embedded with no SMTP, no pepper, no previous peppers, not behind a proxy", () => {
    expect(config.databaseUrl).toBeUndefined();
    expect(config.smtpUrl).toBeUndefined();
    expect(config.pepper).toBeUndefined();
    expect(config.previousPeppers).toEqual([]);
    expect(config.trustProxy).toEqual({ kind: "none" });
    expect(config.logLevel).toBe("info");
  });

  it("treats empty strings as unset", () => {
    const c = loadConfig({ HOST: "", PORT: "", LOG_LEVEL: "", RATE_LIMIT_EMAIL_BURST: "" });
    expect(c.host).toBe("127.0.0.1");
    expect(c.port).toBe(8080);
    expect(c.logLevel).toBe("info");
    expect(c.limits.email.burst).toBe(3);
  });

  it("reads overrides", () => {
    const c = loadConfig({
      HOST: "0.0.0.0",
      PORT: "0",
      RATE_LIMIT_EMAIL_BURST: "5",
      RATE_LIMIT_EMAIL_PERIOD_MS: "1000",
      RATE_LIMIT_IP_BURST: "7",
      RATE_LIMIT_TENANT_PERIOD_MS: "99",
      RATE_LIMIT_TENANT_SHARDS: "4",
      TRUST_PROXY: "yes",
      LOG_LEVEL: "debug",
    });
    expect(c.host).toBe("0.0.0.0");
    expect(c.port).toBe(0);
    expect(c.limits.email).toEqual({ burst: 5, periodMs: 1000 });
    expect(c.limits.ip).toEqual({ burst: 7, periodMs: 2_000 });
    expect(c.limits.tenant).toEqual({ burst: 1000, periodMs: 99 });
    expect(c.limits.tenantShards).toBe(4);
    expect(c.trustProxy).toEqual({ kind: "hops", hops: 1 });
    expect(c.logLevel).toBe("debug");
  });

  it("accepts a postgres URL with a pepper", () => {
    const c = loadConfig({ DATABASE_URL: "postgresql://u@h/db", OTP_PEPPER: PEPPER, SMTP_URL: "smtp://mail.example:587" });
    expect(c.databaseUrl).toBe("postgresql://u@h/db");
    expect(c.pepper).toEqual({ id: 1, secret: PEPPER });
  });
});

describe("loadConfig result is deeply frozen", () => {
  const config = loadConfig({
    DATABASE_URL: "postgres://x/y",
    SMTP_URL: "smtp://mail.example:587",
    OTP_PEPPER: PEPPER,
    OTP_PEPPER_ID: "3",
    OTP_PREVIOUS_PEPPERS: `1:${OLD_PEPPER_A}`,
  });

  it("freezes the object and every nested object and array", () => {
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.limits)).toBe(true);
    expect(Object.isFrozen(config.limits.email)).toBe(true);
    expect(Object.isFrozen(config.limits.ip)).toBe(true);
    expect(Object.isFrozen(config.limits.tenant)).toBe(true);
    expect(Object.isFrozen(config.outbox)).toBe(true);
    expect(Object.isFrozen(config.pepper)).toBe(true);
    expect(Object.isFrozen(config.previousPeppers)).toBe(true);
    expect(Object.isFrozen(config.previousPeppers[0])).toBe(true);
  });

  it("rejects writes at any depth", () => {
    // ES modules are strict: writing a frozen property throws.
    expect(() => {
      (config as { port: number }).port = 1;
    }).toThrow(TypeError);
    expect(() => {
      (config.limits.email as { burst: number }).burst = 1_000_000;
    }).toThrow(TypeError);
    expect(() => {
      (config.previousPeppers as unknown as unknown[]).push({ id: 9, secret: "x" });
    }).toThrow(TypeError);
    expect(config.port).toBe(8080);
    expect(config.limits.email.burst).toBe(3);
    expect(config.previousPeppers).toHaveLength(1);
  });
});

describe("loadConfig rejects bad values with a ConfigError naming the variable", () => {
  it.each([
    ["PORT", { PORT: "abc" }],
    ["PORT", { PORT: "70000" }],
    ["PORT", { PORT: "-1" }],
    ["PORT", { PORT: "80.5" }],
    ["DATABASE_URL", { DATABASE_URL: "mysql://x", OTP_PEPPER: PEPPER }],
    ["SMTP_URL", { SMTP_URL: "http://x" }],
    ["OTP_PEPPER", { OTP_PEPPER: "p".repeat(31) }],
    ["LOG_LEVEL", { LOG_LEVEL: "loud" }],
    ["TRUST_PROXY", { TRUST_PROXY: "maybe" }],
    ["RATE_LIMIT_EMAIL_BURST", { RATE_LIMIT_EMAIL_BURST: "0" }],
    ["RATE_LIMIT_IP_PERIOD_MS", { RATE_LIMIT_IP_PERIOD_MS: "x" }],
    ["MAIL_FROM", { MAIL_FROM: "Acme <a@b.c>" }],
    ["ADMIN_TOKEN", { ADMIN_TOKEN: "short" }],
    // /metrics can tell who is a customer: its token is held to the admin token's rule.
    ["METRICS_TOKEN", { METRICS_TOKEN: "1" }],
    ["METRICS_TOKEN", { METRICS_TOKEN: "has a space in it somewhere" }],
  ] as const)("%s (%j)", (variable, env) => {
    const err = configErrorOf(env);
    expect(err.name).toBe("ConfigError");
    expect(err.message).toContain(variable);
  });

  it("says which value was wrong for a number out of range", () => {
    expect(configErrorOf({ PORT: "70000" }).message).toMatch(/PORT must be between 0 and 65535, got 70000/);
    expect(configErrorOf({ PORT: "abc" }).message).toMatch(/PORT must be a whole number, got "abc"/);
  });

  it("accepts a pepper of exactly 32 characters", () => {
    expect(loadConfig({ OTP_PEPPER: "p".repeat(32) }).pepper?.secret).toBe("p".repeat(32));
  });

  it("requires OTP_PEPPER when DATABASE_URL is set, and says to set it", () => {
    const err = configErrorOf({ DATABASE_URL: "postgres://u@h/db" });
    expect(err.message).toMatch(/OTP_PEPPER/);
    expect(err.message).toMatch(/set it/i);
    expect(err.message).toMatch(/DATABASE_URL/);
  });
});

describe("OTP_PREVIOUS_PEPPERS", () => {
  it("parses a comma-separated list of id:secret, ignoring space around entries", () => {
    const c = loadConfig({
      OTP_PEPPER: PEPPER,
      OTP_PEPPER_ID: "3",
      OTP_PREVIOUS_PEPPERS: ` 1:${OLD_PEPPER_A} , 2:${OLD_PEPPER_B}`,
    });
    expect(c.pepper).toEqual({ id: 3, secret: PEPPER });
    expect(c.previousPeppers).toEqual([
      { id: 1, secret: OLD_PEPPER_A },
      { id: 2, secret: OLD_PEPPER_B },
    ]);
  });

  it("keeps colons inside a secret", () => {
    const secret = `x:${"y".repeat(31)}`;
    const c = loadConfig({ OTP_PEPPER: PEPPER, OTP_PEPPER_ID: "2", OTP_PREVIOUS_PEPPERS: `1:${secret}` });
    expect(c.previousPeppers).toEqual([{ id: 1, secret }]);
  });

  it.each([
    ["no id", OLD_PEPPER_A],
    ["a short secret", `1:${"a".repeat(31)}`],
    ["a non-numeric id", `one:${OLD_PEPPER_A}`],
    ["an empty entry", `1:${OLD_PEPPER_A},`],
  ])("rejects %s", (_, value) => {
    const err = configErrorOf({ OTP_PEPPER: PEPPER, OTP_PEPPER_ID: "2", OTP_PREVIOUS_PEPPERS: value });
    expect(err.message).toContain("OTP_PREVIOUS_PEPPERS");
  });

  it.each([
    ["an id used twice", `1:${OLD_PEPPER_A},1:${OLD_PEPPER_B}`],
    ["id 0", `0:${OLD_PEPPER_A}`],
    ["an id past 32767", `40000:${OLD_PEPPER_A}`],
  ])("rejects %s", (_, value) => {
    const err = configErrorOf({ OTP_PEPPER: PEPPER, OTP_PEPPER_ID: "2", OTP_PREVIOUS_PEPPERS: value });
    expect(err.message).toContain("OTP_PREVIOUS_PEPPERS");
  });

  it("checks previous ids against OTP_PEPPER_ID even when the pepper is generated (embedded mode)", () => {
    const err = configErrorOf({ OTP_PEPPER_ID: "2", OTP_PREVIOUS_PEPPERS: `2:${OLD_PEPPER_A}` });
    expect(err.message).toContain("OTP_PREVIOUS_PEPPERS");
    expect(loadConfig({ OTP_PEPPER_ID: "2", OTP_PREVIOUS_PEPPERS: `1:${OLD_PEPPER_A}` }).pepperId).toBe(2);
  });

  it("rejects reuse of the current pepper id (default 1)", () => {
    const err = configErrorOf({ OTP_PEPPER: PEPPER, OTP_PREVIOUS_PEPPERS: `1:${OLD_PEPPER_A}` });
    expect(err.message).toContain("OTP_PREVIOUS_PEPPERS");
    expect(err.message).toContain("OTP_PEPPER_ID 1");
  });
});

describe("platform tools and tracing (the standard OTEL_* variables)", () => {
  it("serves reflection by default; GRPC_REFLECTION=false turns it off", () => {
    expect(loadConfig({}).platform.reflection).toBe(true);
    expect(loadConfig({ GRPC_REFLECTION: "false" }).platform.reflection).toBe(false);
  });

  it("traces nothing unless an OTLP endpoint is set", () => {
    expect(loadConfig({}).tracing).toBeUndefined();
    expect(loadConfig({ OTEL_SERVICE_NAME: "x", OTEL_TRACES_SAMPLER: "always_on" }).tracing).toBeUndefined();
  });

  it("reads the endpoint, protocol, headers, service name, sampler and batch delay", () => {
    const t = loadConfig({
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318/",
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      OTEL_EXPORTER_OTLP_HEADERS: "x-api-key=a%20b,tenant=t1",
      OTEL_SERVICE_NAME: "otp-eu",
      OTEL_RESOURCE_ATTRIBUTES: "deployment.environment=prod",
      OTEL_TRACES_SAMPLER: "parentbased_traceidratio",
      OTEL_TRACES_SAMPLER_ARG: "0.25",
      OTEL_BSP_SCHEDULE_DELAY: "200",
    }).tracing!;
    expect(t).toMatchObject({
      endpoint: "http://collector:4318/v1/traces",
      protocol: "http/json",
      headers: { "x-api-key": "a b", tenant: "t1" },
      serviceName: "otp-eu",
      resourceAttributes: { "deployment.environment": "prod" },
      sampler: "parentbased_traceidratio",
      samplerArg: 0.25,
      scheduleDelayMs: 200,
    });
    expect(loadConfig({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://c:4318/custom" }).tracing).toMatchObject({
      endpoint: "http://c:4318/custom",
      protocol: "http/protobuf",
      serviceName: "otp-service",
      sampler: "parentbased_always_on",
    });
  });

  it("stays off with OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none", () => {
    expect(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_SDK_DISABLED: "true" }).tracing).toBeUndefined();
    expect(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_TRACES_EXPORTER: "none" }).tracing).toBeUndefined();
  });

  it.each([
    ["OTEL_EXPORTER_OTLP_PROTOCOL", { OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" }],
    ["OTEL_TRACES_SAMPLER", { OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_TRACES_SAMPLER: "sometimes" }],
    ["OTEL_TRACES_SAMPLER_ARG", { OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_TRACES_SAMPLER: "traceidratio", OTEL_TRACES_SAMPLER_ARG: "2" }],
    ["OTEL_EXPORTER_OTLP_ENDPOINT", { OTEL_EXPORTER_OTLP_ENDPOINT: "collector:4318" }],
    ["OTEL_EXPORTER_OTLP_HEADERS", { OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_EXPORTER_OTLP_HEADERS: "novalue" }],
  ])("names %s when it is malformed", (name, env) => {
    expect(configErrorOf(env).message).toContain(name);
  });

  it("names the headers variable that was set, and never repeats a header's value (an API key) in the error", () => {
    for (const name of ["OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"]) {
      const message = configErrorOf({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", [name]: "x-api-key=s3cr3t-%zz-value" }).message;
      expect(message).toContain(name);
      expect(message).toContain("x-api-key");
      expect(message).not.toContain("s3cr3t");
    }
  });
});
