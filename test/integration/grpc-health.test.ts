// grpc.health.v1 follows readiness, seen by the stock clients: @grpc/grpc-js
// (as Kubernetes probes and grpc_health_probe speak it) and `buf curl`
// through reflection. The database is reached through a proxy the test can
// cut, as when its host goes away.
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Health, HealthCheckRequestSchema, HealthCheckResponse_ServingStatus as Status, type HealthCheckResponse } from "../../gen/health/v1/health_pb.js";
import { WATCHES_PER_CLIENT } from "../../src/transport/health.js";
import { sleep } from "../support/answers.js";
import { startTestEnv, type TestEnv } from "../support/app.js";
import { bufCurl } from "../support/buf-curl.js";
import { grpcJsClient, unary, type GrpcJsClient } from "../support/grpc-js.js";
import { startTcpProxy, type TcpProxy } from "../support/tcp-proxy.js";

let env: TestEnv;
let proxy: TcpProxy;
let url: string;
let health: GrpcJsClient;

beforeAll(async () => {
  env = await startTestEnv();
  proxy = await startTcpProxy(env.database.url);
  ({ url } = await env.startInstance({ DATABASE_URL: proxy.url, HEALTH_POLL_MS: "100" }));
  health = grpcJsClient(Health, url);
});

afterAll(async () => {
  health?.close();
  proxy?.up();
  await env?.close();
  await proxy?.close();
});

const check = (service: string) => unary<HealthCheckResponse>(health, "check", create(HealthCheckRequestSchema, { service }), { deadline: Date.now() + 5_000 });

/** Statuses a Watch streams, as they arrive. */
function watch(client: GrpcJsClient, service: string) {
  const seen: Status[] = [];
  let ended: grpc.StatusObject | undefined;
  const call = client.watch(create(HealthCheckRequestSchema, { service })) as grpc.ClientReadableStream<HealthCheckResponse>;
  call.on("data", (r: HealthCheckResponse) => seen.push(r.status));
  call.on("status", (s: grpc.StatusObject) => (ended = s));
  call.on("error", () => {});
  const until = async (pred: () => boolean, what: string, timeoutMs = 10_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!pred()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; seen ${JSON.stringify(seen)}`);
      await sleep(20);
    }
  };
  return { seen, call, until, ended: () => ended };
}

describe("grpc.health.v1.Health over @grpc/grpc-js", () => {
  it("reports SERVING for the server as a whole and for each service it serves", async () => {
    for (const service of ["", "otp.v1.OtpService", "otp.v1.SessionService", "otp.v1.AdminService", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"]) {
      expect((await check(service)).status, service).toBe(Status.SERVING);
    }
  });

  it("answers NOT_FOUND for a service it does not serve", async () => {
    await expect(check("otp.v1.NoSuchService")).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
  });

  it("answers NOT_FOUND for a service name of 10,000 control characters too: its status arrives, the message cut short", async () => {
    // Quoted and percent-encoded whole, the name made an 80 KB grpc-message trailer, past what HTTP/2 sends: the stream was reset instead.
    const err = (await check("\x01".repeat(10_000)).then(
      () => undefined,
      (e: unknown) => e,
    )) as grpc.ServiceError | undefined;
    expect(err?.code, String(err)).toBe(grpc.status.NOT_FOUND);
    expect(err!.details.length).toBeLessThan(2_000);
  });

  it("turns NOT_SERVING while the database is unreachable, Watch streaming each change, and SERVING again once it is back", async () => {
    const w = watch(health, "otp.v1.OtpService");
    await w.until(() => w.seen.length === 1, "the first status");
    expect(w.seen).toEqual([Status.SERVING]);

    proxy.down();
    await w.until(() => w.seen.length === 2, "NOT_SERVING");
    expect(w.seen[1]).toBe(Status.NOT_SERVING);
    expect((await check("")).status).toBe(Status.NOT_SERVING);
    // /readyz agrees: one readiness.
    expect((await fetch(`${url}/readyz`)).status).toBe(503);

    proxy.up();
    await w.until(() => w.seen.length === 3, "SERVING again");
    expect(w.seen).toEqual([Status.SERVING, Status.NOT_SERVING, Status.SERVING]);
    expect((await check("")).status).toBe(Status.SERVING);
    w.call.cancel();
  });

  it("Watch of an unknown service says SERVICE_UNKNOWN and keeps the call open", async () => {
    const w = watch(health, "otp.v1.NoSuchService");
    await w.until(() => w.seen.length === 1, "SERVICE_UNKNOWN");
    expect(w.seen).toEqual([Status.SERVICE_UNKNOWN]);
    await sleep(200);
    expect(w.ended()).toBeUndefined();
    w.call.cancel();
  });
});

describe("Watch calls held open by one client", () => {
  it(`are bounded: past ${WATCHES_PER_CLIENT} at once the next is RESOURCE_EXHAUSTED, and closing one lets another in`, async () => {
    // Each is held open without traffic for as long as the process lives, and needs no credentials.
    const open = Array.from({ length: WATCHES_PER_CLIENT }, () => watch(health, ""));
    try {
      for (const w of open) await w.until(() => w.seen.length === 1, "the first status");
      const refused = watch(health, "");
      await refused.until(() => refused.ended() !== undefined, "the refusal");
      expect(refused.ended()!.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      expect(refused.seen).toEqual([]);
      open.shift()!.call.cancel();
      const next = watch(health, "");
      open.push(next);
      await next.until(() => next.seen.length === 1, "a status once a watch was closed");
      expect(next.seen).toEqual([Status.SERVING]);
    } finally {
      for (const w of open) w.call.cancel();
    }
  });
});

describe("grpc.health.v1.Health over buf curl (schema from reflection)", () => {
  it("says SERVING, and NOT_SERVING with the database stopped", async () => {
    const call = () => bufCurl(["-d", '{"service":""}', `${url}/grpc.health.v1.Health/Check`]);
    const up = await call();
    expect(up.code, up.stderr).toBe(0);
    expect(JSON.parse(up.stdout)).toEqual({ status: "SERVING" });

    proxy.down();
    try {
      const down = await call();
      expect(down.code, down.stderr).toBe(0);
      expect(JSON.parse(down.stdout)).toEqual({ status: "NOT_SERVING" });
    } finally {
      proxy.up();
    }
  });
});

describe("health during shutdown", () => {
  it("a watching client is told NOT_SERVING, then its stream ends", async () => {
    const other = await env.startInstance();
    const client = grpcJsClient(Health, other.url);
    const w = watch(client, "");
    await w.until(() => w.seen.length === 1, "SERVING");
    const closing = other.app.close();
    await w.until(() => w.ended() !== undefined, "the end of the stream");
    expect(w.seen).toEqual([Status.SERVING, Status.NOT_SERVING]);
    expect(w.ended()!.code).toBe(grpc.status.OK);
    await closing;
    client.close();
  });
});
