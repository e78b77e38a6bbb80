// What one client can hold open on the port is bounded: streams per HTTP/2
// session (advertised and enforced), HTTP/2 sessions and connections per
// client, streams per client over all its sessions, and time (a stream whose
// request has not arrived in full within REQUEST_TIMEOUT_MS is reset). The
// service on port 0 with small bounds; the memory these bounds keep a flood
// to is measured on a real process in test/faults/http2-flood.test.ts.
import http2 from "node:http2";
import net from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { startTestEnv, type TestEnv } from "../support/app.js";

const DEADLINE_MS = 1_000;
const { NGHTTP2_CANCEL, NGHTTP2_REFUSED_STREAM } = http2.constants;

let env: TestEnv;
const sessions: http2.ClientHttp2Session[] = [];
beforeAll(async () => {
  env = await startTestEnv({
    REQUEST_TIMEOUT_MS: String(DEADLINE_MS),
    MAX_SESSIONS_PER_CLIENT: "3",
    MAX_STREAMS_PER_CLIENT: "4",
    MAX_CONNECTIONS_PER_CLIENT: "6",
  });
});
afterAll(async () => {
  for (const s of sessions) s.destroy();
  await env?.close();
});

/** An HTTP/2 session; resolves with it once the server's SETTINGS arrived, or undefined if the server closed it. */
function connect(): Promise<http2.ClientHttp2Session | undefined> {
  const session = http2.connect(env.url);
  sessions.push(session);
  session.on("error", () => {});
  return new Promise((resolve) => {
    session.once("remoteSettings", () => resolve(session));
    session.once("close", () => resolve(undefined));
  });
}

/** A gRPC request whose body never comes: resolves with the RST_STREAM code and when it came. */
function halfOpen(session: http2.ClientHttp2Session): Promise<{ rstCode: number; ms: number }> {
  const started = performance.now();
  const stream = session.request(
    { ":method": "POST", ":path": "/otp.v1.OtpService/SendOtp", "content-type": "application/grpc", te: "trailers" },
    { endStream: false },
  );
  stream.on("error", () => {});
  stream.resume();
  return new Promise((resolve) => stream.once("close", () => resolve({ rstCode: stream.rstCode ?? -1, ms: performance.now() - started })));
}

function closeAll(): void {
  for (const s of sessions.splice(0)) s.destroy();
}

describe("HTTP/2 bounds", () => {
  // Each test starts with none of this client's sessions or connections
  // open: those of the test before are closed, and gone on the server's
  // side too (it counts them per client).
  beforeEach(async () => {
    closeAll();
    await new Promise((r) => setTimeout(r, 500));
  });

  it("advertises 100 concurrent streams per session", async () => {
    const session = await connect();
    expect(session?.remoteSettings.maxConcurrentStreams).toBe(100);
    closeAll();
  });

  it("resets a stream whose request never ends, at the request deadline", async () => {
    const session = (await connect())!;
    const { rstCode, ms } = await halfOpen(session);
    expect(rstCode).toBe(NGHTTP2_CANCEL);
    expect(ms).toBeGreaterThanOrEqual(DEADLINE_MS - 50);
    expect(ms).toBeLessThan(DEADLINE_MS + 4_000);
    closeAll();
  });

  it("does not cut a stream whose request arrived in full (the RPC answers)", async () => {
    const session = (await connect())!;
    const stream = session.request({ ":method": "GET", ":path": "/healthz" });
    let status = 0;
    stream.on("response", (headers) => {
      status = Number(headers[":status"]);
    });
    stream.resume();
    await new Promise((resolve) => stream.once("close", resolve));
    expect(status).toBe(200);
    expect(stream.rstCode).toBe(http2.constants.NGHTTP2_NO_ERROR);
    closeAll();
  });

  it("refuses streams beyond the client's cap, over all its sessions", async () => {
    const a = (await connect())!;
    const b = (await connect())!;
    const streams = [halfOpen(a), halfOpen(a), halfOpen(b), halfOpen(b), halfOpen(b)];
    const results = await Promise.all(streams);
    const codes = results.map((r) => r.rstCode).sort();
    expect(codes).toEqual([NGHTTP2_CANCEL, NGHTTP2_CANCEL, NGHTTP2_CANCEL, NGHTTP2_CANCEL, NGHTTP2_REFUSED_STREAM].sort());
    // The refusal is immediate; the others wait for the deadline.
    expect(Math.min(...results.map((r) => r.ms))).toBeLessThan(DEADLINE_MS);
    closeAll();
  });

  it("closes a client's HTTP/2 sessions beyond its cap, and takes new ones once they end", async () => {
    const kept = await Promise.all([connect(), connect(), connect()]);
    expect(kept.every((s) => s !== undefined)).toBe(true);
    expect(await connect()).toBeUndefined();
    closeAll();
    await new Promise((r) => setTimeout(r, 200));
    expect(await connect()).toBeDefined();
    closeAll();
  });

  it("closes a client's connections beyond its cap", async () => {
    const sockets = await Promise.all(
      Array.from({ length: 7 }, () => {
        const socket = net.connect(Number(new URL(env.url).port), "127.0.0.1");
        socket.on("error", () => {});
        return new Promise<{ socket: net.Socket; closed: boolean }>((resolve) => {
          socket.once("connect", () => {
            const result = { socket, closed: false };
            socket.once("close", () => {
              result.closed = true;
            });
            setTimeout(() => resolve(result), 500);
          });
        });
      }),
    );
    expect(sockets.filter((s) => s.closed)).toHaveLength(1);
    for (const s of sockets) s.socket.destroy();
  });
});
