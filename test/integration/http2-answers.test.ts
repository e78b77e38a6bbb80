// How a whole answer leaves over HTTP/2 (a unary Connect call's, and every
// JSON answer of a REST route): its HEADERS, then its body in DATA frames,
// the last of which ends the stream. No empty DATA frame
// follows only to end it (a frame and a socket write more per call), and the
// answer carries the same headers and status, in the access line too, as
// over HTTP/1.1. The frames are read off the wire by a TCP relay between a
// node:http2 client and the service on port 0 (real Postgres and SMTP).
import http2 from "node:http2";
import net from "node:net";
import { Writable } from "node:stream";
import { create, toBinary } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SendOtpRequestSchema } from "../../gen/otp/v1/otp_service_pb.js";
import { createLogger } from "../../src/server.js";
import { startTestEnv, type TestEnv } from "../support/app.js";

const DATA = 0x0;
const HEADERS = 0x1;
const END_STREAM = 0x1;

interface Frame {
  readonly type: number;
  readonly flags: number;
  readonly length: number;
}

/** Each frame as [type, END_STREAM set, has a payload]. */
const shapeOf = (frames: readonly Frame[]) => frames.map((f) => [f.type, f.flags & END_STREAM, f.length > 0]);
const HEADERS_THEN_ONE_ENDING_DATA = [
  [HEADERS, 0, true],
  [DATA, END_STREAM, true],
];

const lines: string[] = [];
let env: TestEnv;
let relay: net.Server;
let relayUrl: string;
/** The frames the service sent, per stream id, in the order they came. */
const framesByStream = new Map<number, Frame[]>();

beforeAll(async () => {
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(...String(chunk).split("\n").filter(Boolean));
      done();
    },
  });
  env = await startTestEnv({}, { logger: createLogger("info", sink) });
  const target = new URL(env.url);
  relay = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    client.pipe(upstream);
    let pending = Buffer.alloc(0);
    upstream.on("data", (chunk: Buffer) => {
      client.write(chunk);
      pending = Buffer.concat([pending, chunk]);
      // A frame: 24-bit length, type, flags, 31-bit stream id, payload.
      while (pending.length >= 9) {
        const length = pending.readUIntBE(0, 3);
        if (pending.length < 9 + length) break;
        const stream = pending.readUInt32BE(5) & 0x7fffffff;
        const list = framesByStream.get(stream) ?? [];
        list.push({ type: pending[3]!, flags: pending[4]!, length });
        framesByStream.set(stream, list);
        pending = pending.subarray(9 + length);
      }
    });
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("error", close).on("close", close);
    upstream.on("error", close).on("close", close);
  });
  await new Promise<void>((resolve) => relay.listen(0, "127.0.0.1", resolve));
  relayUrl = `http://127.0.0.1:${(relay.address() as net.AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => relay?.close(resolve));
  await env?.close();
});

interface Answer {
  readonly status: number;
  readonly headers: http2.IncomingHttpHeaders;
  readonly body: Buffer;
  readonly frames: readonly Frame[];
}

/** One request on a fresh HTTP/2 session through the relay (its first stream, id 1); POST when it has a body. */
async function call(path: string, headers: Record<string, string>, body?: Buffer): Promise<Answer> {
  const session = http2.connect(relayUrl);
  session.on("error", () => {});
  try {
    const stream = session.request({ ":method": body ? "POST" : "GET", ":path": path, ...headers });
    const chunks: Buffer[] = [];
    const response = new Promise<http2.IncomingHttpHeaders>((resolve) => stream.once("response", resolve));
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.end(body);
    await new Promise((resolve) => stream.once("close", resolve));
    const head = await response;
    return { status: Number(head[":status"]), headers: head, body: Buffer.concat(chunks), frames: framesByStream.get(stream.id!) ?? [] };
  } finally {
    session.destroy();
    framesByStream.clear();
  }
}

function accessLineFor(requestId: string): Record<string, unknown> | undefined {
  return lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === "request" && l.request_id === requestId);
}

const connectJson = { "content-type": "application/json", "connect-protocol-version": "1" };

describe("a unary Connect answer over HTTP/2", () => {
  it("is HEADERS and one DATA frame that ends the stream, with its length, type and request id", async () => {
    const body = Buffer.from(JSON.stringify({ email: "nobody.h2@example.com", businessId: String(env.businessId) }));
    const answer = await call("/otp.v1.OtpService/SendOtp", connectJson, body);

    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body.toString("utf8"))).toHaveProperty("WasSuccessful", true);
    expect(answer.headers["content-type"]).toBe("application/json");
    expect(answer.headers["content-length"]).toBe(String(answer.body.length));
    expect(answer.headers["x-request-id"]).toMatch(/^request-id-test-/);
    expect(shapeOf(answer.frames)).toEqual(HEADERS_THEN_ONE_ENDING_DATA);
    await env.app.worker.idle();
    expect(accessLineFor(String(answer.headers["x-request-id"]))).toMatchObject({ path: "/otp.v1.OtpService/SendOtp", protocol: "connect", status: 200 });
  });

  it("is framed the same when it is an error, and the access line has the error's status", async () => {
    const answer = await call("/otp.v1.OtpService/SendOtp", connectJson, Buffer.from(JSON.stringify({ email: "not-an-email", businessId: "1" })));

    expect(answer.status).toBe(400);
    expect(JSON.parse(answer.body.toString("utf8"))).toMatchObject({ code: "invalid_argument" });
    expect(answer.headers["content-length"]).toBe(String(answer.body.length));
    expect(shapeOf(answer.frames)).toEqual(HEADERS_THEN_ONE_ENDING_DATA);
    expect(accessLineFor(String(answer.headers["x-request-id"]))).toMatchObject({ protocol: "connect", status: 400 });
  });

  it("in binary is framed the same", async () => {
    const message = Buffer.from(toBinary(SendOtpRequestSchema, create(SendOtpRequestSchema, { email: "nobody.h2b@example.com", businessId: BigInt(env.businessId) })));
    const answer = await call("/otp.v1.OtpService/SendOtp", { "content-type": "application/proto", "connect-protocol-version": "1" }, message);

    expect(answer.status).toBe(200);
    expect(answer.headers["content-type"]).toBe("application/proto");
    expect(shapeOf(answer.frames)).toEqual(HEADERS_THEN_ONE_ENDING_DATA);
  });
});

describe("a JSON answer of a REST route over HTTP/2", () => {
  it("is HEADERS and one DATA frame that ends the stream, for a success and for an error", async () => {
    const sent = await call(`/api/sys/users/sendOtp?email=nobody.h2r%40example.com&businessId=${env.businessId}`, {});
    const refused = await call("/v1/otps/email/send", { "content-type": "application/json" }, Buffer.from(JSON.stringify({ email: "a@b.co" })));

    expect(sent.status).toBe(200);
    expect(JSON.parse(sent.body.toString("utf8"))).toHaveProperty("WasSuccessful", true);
    expect(refused.status).toBe(401);
    for (const answer of [sent, refused]) {
      expect(answer.headers["content-type"]).toBe("application/json; charset=utf-8");
      expect(answer.headers["content-length"]).toBe(String(answer.body.length));
      expect(answer.headers["x-request-id"]).toMatch(/^request-id-test-/);
      expect(shapeOf(answer.frames)).toEqual(HEADERS_THEN_ONE_ENDING_DATA);
    }
    expect(accessLineFor(String(refused.headers["x-request-id"]))).toMatchObject({ path: "/v1/otps/email/send", status: 401 });
  });
});
