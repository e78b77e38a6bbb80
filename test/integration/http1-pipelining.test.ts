// HTTP/1.1 pipelining: a client may write request after request on one
// connection without reading the answers. Node hands each to the service as
// soon as it is parsed, so without a bound one connection could hold any
// number of requests in progress (each waiting, say, for the legacy routes'
// response floor). The bound: PIPELINED_PER_CONNECTION in progress on one
// connection, and as many in progress per client as it may have HTTP/2
// streams (MAX_STREAMS_PER_CLIENT); past either the connection is closed.
// Real Postgres.
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PIPELINED_PER_CONNECTION } from "../../src/transport/one-port.js";
import { startTestEnv, type TestEnv } from "../support/app.js";

let env: TestEnv;
beforeAll(async () => {
  env = await startTestEnv({ LEGACY_MIN_RESPONSE_MS: "200" });
});
afterAll(async () => {
  await env?.close();
});

/** Writes `count` legacy exchanges (each held for the 200 ms floor) on one connection at once; resolves with what came back when it closed. */
function pipelined(count: number): Promise<{ answers: number; closedAfterMs: number }> {
  const url = new URL(env.url);
  const body = JSON.stringify({ email: "pipelined@example.com", otp: "123456", businessId: env.businessId });
  const request = `POST /api/sys/users/exchange HTTP/1.1\r\nHost: ${url.host}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const socket = net.connect(Number(url.port), url.hostname, () => socket.write(request.repeat(count)));
    let received = "";
    socket.on("data", (chunk) => {
      received += chunk.toString("latin1");
    });
    socket.on("error", () => {});
    socket.on("close", () => resolve({ answers: received.split("HTTP/1.1 ").length - 1, closedAfterMs: Date.now() - started }));
    setTimeout(() => {
      socket.destroy();
      reject(new Error(`the connection was still open after 10 s, with ${received.split("HTTP/1.1 ").length - 1} answers`));
    }, 10_000).unref();
  });
}

describe("requests pipelined on one HTTP/1.1 connection", () => {
  it(`past ${PIPELINED_PER_CONNECTION} in progress, the connection is closed at once, not served request after request`, async () => {
    const { answers, closedAfterMs } = await pipelined(500);
    expect(answers).toBeLessThanOrEqual(PIPELINED_PER_CONNECTION);
    expect(closedAfterMs).toBeLessThan(2_000);
  });

  it("a client that pipelines within the bound is answered in full", async () => {
    const url = new URL(env.url);
    const socket = net.connect(Number(url.port), url.hostname);
    const request = `GET /healthz HTTP/1.1\r\nHost: ${url.host}\r\n\r\n`;
    socket.write(`${request.repeat(PIPELINED_PER_CONNECTION - 1)}GET /healthz HTTP/1.1\r\nHost: ${url.host}\r\nConnection: close\r\n\r\n`);
    let received = "";
    socket.on("data", (chunk) => {
      received += chunk.toString("latin1");
    });
    await new Promise((resolve) => socket.on("close", resolve));
    expect(received.split("HTTP/1.1 200").length - 1).toBe(PIPELINED_PER_CONNECTION);
  });

  it("another client is served meanwhile", async () => {
    const flood = pipelined(500);
    const res = await fetch(`${env.url}/healthz`);
    expect(res.status).toBe(200);
    await flood;
  });
});
