// Bad input gets a clear answer in its route's own shape: a sender name that
// would read as something else is refused; a request message that cannot be
// decoded is the caller's invalid_argument (not our internal error) on every
// protocol; and the sign-in page cannot be framed or run injected script.
// The service on port 0, real Postgres and SMTP.
import { createHash } from "node:crypto";
import http2 from "node:http2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestEnv, type TestEnv } from "../support/app.js";

const ADMIN_TOKEN = "hygiene-admin-token-0123456789abcdef";
/** Field 1 (email), length-delimited, announcing 127 bytes that never come. */
const UNDECODABLE = Buffer.from([0x0a, 0x7f, 0x61]);

let env: TestEnv;
beforeAll(async () => {
  env = await startTestEnv({ ADMIN_TOKEN });
});
afterAll(async () => {
  await env?.close();
});

/** A gRPC / gRPC-Web data frame: uncompressed, with a 4-byte length. */
function frame(message: Buffer, flag = 0): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt8(flag, 0);
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

/** The grpc-status and grpc-message of a gRPC-Web answer (headers, or the trailer frame in its body). */
function grpcWebStatus(headers: Headers, body: Buffer): { status: string | null; message: string } {
  if (headers.get("grpc-status") !== null) return { status: headers.get("grpc-status"), message: decodeURIComponent(headers.get("grpc-message") ?? "") };
  for (let at = 0; at + 5 <= body.length; ) {
    const flag = body.readUInt8(at);
    const length = body.readUInt32BE(at + 1);
    const data = body.subarray(at + 5, at + 5 + length).toString("latin1");
    if (flag & 0x80) {
      const status = /^grpc-status:\s*(\d+)/im.exec(data)?.[1] ?? null;
      const message = decodeURIComponent(/^grpc-message:\s*(.*?)\r?$/im.exec(data)?.[1] ?? "");
      return { status, message };
    }
    at += 5 + length;
  }
  return { status: null, message: "" };
}

describe("an undecodable binary request message is invalid_argument, on every protocol", () => {
  it("Connect (application/proto): 400 invalid_argument", async () => {
    const res = await fetch(`${env.url}/otp.v1.OtpService/SendOtp`, {
      method: "POST",
      headers: { "content-type": "application/proto", "connect-protocol-version": "1" },
      body: new Uint8Array(UNDECODABLE),
    });
    const body = (await res.json()) as { code: string; message: string };
    expect(res.status).toBe(400);
    expect(body.code).toBe("invalid_argument");
    expect(body.message).not.toMatch(/internal/i);
  });

  it("gRPC-Web (application/grpc-web+proto): grpc-status 3 (INVALID_ARGUMENT)", async () => {
    const res = await fetch(`${env.url}/otp.v1.OtpService/SendOtp`, {
      method: "POST",
      headers: { "content-type": "application/grpc-web+proto", "x-grpc-web": "1" },
      body: new Uint8Array(frame(UNDECODABLE)),
    });
    const { status, message } = grpcWebStatus(res.headers, Buffer.from(await res.arrayBuffer()));
    expect(status).toBe("3");
    expect(message).toMatch(/cannot be read/);
  });

  it("gRPC (application/grpc over HTTP/2): grpc-status 3 (INVALID_ARGUMENT)", async () => {
    const session = http2.connect(env.url);
    session.on("error", () => {});
    try {
      const stream = session.request({ ":method": "POST", ":path": "/otp.v1.OtpService/SendOtp", "content-type": "application/grpc", te: "trailers" });
      let status: string | undefined;
      const grab = (headers: http2.IncomingHttpHeaders) => {
        if (headers["grpc-status"] !== undefined) status = String(headers["grpc-status"]);
      };
      stream.on("response", grab);
      stream.on("trailers", grab);
      stream.resume();
      stream.end(frame(UNDECODABLE));
      await new Promise((resolve) => stream.once("close", resolve));
      expect(status).toBe("3");
    } finally {
      session.destroy();
    }
  });

  it("a well-formed message still goes through (gRPC-Web)", async () => {
    // SendOtpRequest { email = "a@b.co" (1), business_id (2) }
    const email = Buffer.from("stranger-hygiene@example.com");
    const message = Buffer.concat([Buffer.from([0x0a, email.length]), email, Buffer.from([0x10]), varint(env.businessId)]);
    const res = await fetch(`${env.url}/otp.v1.OtpService/SendOtp`, {
      method: "POST",
      headers: { "content-type": "application/grpc-web+proto", "x-grpc-web": "1" },
      body: new Uint8Array(frame(message)),
    });
    expect(grpcWebStatus(res.headers, Buffer.from(await res.arrayBuffer())).status).toBe("0");
  });
});

function varint(n: number): Buffer {
  const bytes: number[] = [];
  let v = n;
  while (v >= 0x80) {
    bytes.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  bytes.push(v);
  return Buffer.from(bytes);
}

describe("sender names that would read as something else are refused", () => {
  const upsert = (senderName: string) =>
    fetch(`${env.url}/admin/v1/businesses/${env.businessId + 1}`, {
      method: "PUT",
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "Harbour Yoga", branding: { sender_name: senderName, sender_address: "hello@harbour.example" } }),
    });

  it.each([
    ["a right-to-left override", "Harbour\u202Elpmaxe.knab"],
    ["an address", "security@bank.example"],
    ["angle brackets", "Bank <ceo@bank.example>"],
    ["a control character", "Harbour\u0000Yoga"],
  ])("%s: 400 invalid_argument naming branding.sender_name", async (_what, senderName) => {
    const res = await upsert(senderName);
    const body = (await res.json()) as { code: string; message: string };
    expect(res.status).toBe(400);
    expect(body.code).toBe("invalid_argument");
    expect(body.message).toContain("branding.sender_name");
  });

  it("a tenant name that reads like an address is never shown as the sender (the mail shows the address alone)", async () => {
    const res = await fetch(`${env.url}/admin/v1/businesses/${env.businessId}`, {
      method: "PUT",
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "security@bank.example" }),
    });
    expect(res.status).toBe(200);
    const before = env.smtp.mails.length;
    await fetch(`${env.url}/api/sys/users/sendOtp?email=${encodeURIComponent(env.customer)}&businessId=${env.businessId}`);
    const mail = (await env.smtp.waitFor(before + 1))[before]!;
    expect(mail.from).not.toContain("security@bank.example");
    expect(mail.from).toMatch(/^[^\s<>"]+@[^\s<>"]+$/);
  });

  it("a plain name with accents and emoji is accepted", async () => {
    expect((await upsert("Harbour Yoga — Lisboa 🧘")).status).toBe(200);
  });
});

describe("the sign-in page", () => {
  it("cannot be framed, and runs no inline script; its inline style is allowed by hash only", async () => {
    const res = await fetch(`${env.url}/signin`);
    const html = await res.text();
    expect(res.status).toBe(200);
    expect(res.headers.get("x-frame-options")).toBe("DENY");
    const csp = res.headers.get("content-security-policy") ?? "";
    const directives = new Map(csp.split(";").map((d) => d.trim().split(/\s+/)).map(([name, ...values]) => [name!, values]));
    expect(directives.get("frame-ancestors")).toEqual(["'none'"]);
    expect(directives.get("script-src")).toEqual(["'self'"]);
    expect(directives.get("default-src")).toEqual(["'none'"]);
    expect(csp).not.toContain("unsafe-inline");
    expect(csp).not.toContain("unsafe-eval");
    // Every inline <style> is listed by its hash; there is no inline <script>.
    for (const [, style] of html.matchAll(/<style>([\s\S]*?)<\/style>/g)) {
      expect(directives.get("style-src")).toContain(`'sha256-${createHash("sha256").update(style!).digest("base64")}'`);
    }
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
  });
});
