// The fuzz suite's misbehaving clients: slow ones (silent, trickling
// headers, a body, an HTTP/2 preface or frame) and gRPC over h2c with bad
// metadata.
import http2 from "node:http2";
import { rawConnect } from "./raw-http.js";
import { sleep } from "./service.js";

/** Slow clients, each on its own connection; resolves to ms until the server closed it. */
export async function runSlowClients(port: number): Promise<Record<string, number | string>> {
  const trickle = async (first: string | Buffer, rest: Buffer, boundMs: number) => {
    const conn = await rawConnect(port, boundMs);
    await conn.write(first);
    let closed = false;
    void conn.closed.then(() => (closed = true));
    for (const byte of rest) {
      if (closed) break;
      await conn.write(Buffer.from([byte]));
      await Promise.race([sleep(500), conn.closed]);
    }
    const ms = await Promise.race([conn.closed, sleep(boundMs).then(() => Number.POSITIVE_INFINITY)]);
    conn.socket.destroy();
    return ms;
  };
  const silent = (async () => {
    const conn = await rawConnect(port, 30_000);
    const ms = await Promise.race([conn.closed, sleep(30_000).then(() => Number.POSITIVE_INFINITY)]);
    conn.socket.destroy();
    return ms;
  })();
  const longHeaders = Buffer.from(`POST /v1/otps/email/send HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ${"s".repeat(400)}\r\n\r\n`);
  const preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
  // After a full preface and SETTINGS, a HEADERS frame one byte at a time.
  const settings = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);
  const headersFrame = Buffer.concat([Buffer.from([0, 0, 200, 1, 4, 0, 0, 0, 1]), Buffer.alloc(200, 0x82)]);
  const [s, headers, body, pre, h2] = await Promise.all([
    silent,
    trickle(Buffer.alloc(0), longHeaders, 70_000),
    trickle(
      "POST /v1/otps/email/send HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n",
      Buffer.alloc(400, 0x20),
      70_000,
    ),
    trickle(Buffer.alloc(0), preface, 20_000),
    trickle(Buffer.concat([preface, settings]), headersFrame, 70_000),
  ]);
  return { silent: s, trickledHeaders: headers, trickledBody: body, trickledPreface: pre, trickledHttp2: h2 };
}

export interface H2Result {
  readonly name: string;
  readonly valid: boolean;
  readonly http: number | undefined;
  readonly error: boolean;
  readonly outcome: string;
}

/** gRPC over h2c with bad metadata, from node:http2's client. */
export async function badHttp2(port: number): Promise<H2Result[]> {
  const frame = (bytes: Uint8Array, flags = 0, length = bytes.length) => {
    const b = Buffer.alloc(5 + bytes.length);
    b[0] = flags;
    b.writeUInt32BE(length >>> 0, 1);
    Buffer.from(bytes).copy(b, 5);
    return b;
  };
  // A valid SendOtp message: email (1) "jane.doe@example.com", business_id (2) 7.
  const email = Buffer.from("stranger@example.com");
  const sendOtp = Uint8Array.from([0x0a, email.length, ...email, 0x10, 7]);
  // valid: metadata that is extreme but allowed by the gRPC spec; those need only no crash and no 5xx.
  const cases: { name: string; path?: string; headers: Record<string, string | string[]>; body: Buffer | undefined; valid?: boolean }[] = [
    { name: "grpc-timeout garbage", headers: { "grpc-timeout": "garbage" }, body: frame(sendOtp) },
    { name: "grpc-timeout 1n (valid, already past)", headers: { "grpc-timeout": "1n" }, body: frame(sendOtp), valid: true },
    { name: "grpc-timeout 99999999H (valid)", headers: { "grpc-timeout": "99999999H" }, body: frame(sendOtp), valid: true },
    { name: "grpc-timeout 123456789S (9 digits)", headers: { "grpc-timeout": "123456789S" }, body: frame(sendOtp) },
    { name: "grpc-timeout -1S", headers: { "grpc-timeout": "-1S" }, body: frame(sendOtp) },
    { name: "content-type text/html", headers: { "content-type": "text/html" }, body: frame(sendOtp) },
    { name: "content-type application/grpc+garbage", headers: { "content-type": "application/grpc+garbage" }, body: frame(sendOtp) },
    { name: "no content-type", headers: { "content-type": "" }, body: frame(sendOtp) },
    { name: "huge header (60 KB, valid)", headers: { "x-huge": "h".repeat(60_000) }, body: frame(sendOtp), valid: true },
    { name: "huge header (200 KB)", headers: { "x-huge": "h".repeat(200_000) }, body: frame(sendOtp) },
    { name: "2000 headers", headers: Object.fromEntries(Array.from({ length: 2000 }, (_, i) => [`x-h${i}`, "v"])), body: frame(sendOtp) },
    { name: "grpc-encoding gzip, body not gzip", headers: { "grpc-encoding": "gzip" }, body: frame(sendOtp, 1) },
    { name: "compressed flag, no grpc-encoding", headers: {}, body: frame(sendOtp, 1) },
    { name: "grpc-encoding unknown", headers: { "grpc-encoding": "snappy-x" }, body: frame(sendOtp, 1) },
    { name: "length prefix 4 GiB, 10 bytes sent", headers: {}, body: frame(sendOtp.slice(0, 10), 0, 0xffffffff) },
    { name: "truncated envelope", headers: {}, body: Buffer.from([0, 0, 0]) },
    { name: "empty body", headers: {}, body: undefined },
    { name: "two messages on a unary call", headers: {}, body: Buffer.concat([frame(sendOtp), frame(sendOtp)]) },
    { name: "invalid protobuf", headers: {}, body: frame(Uint8Array.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f])) },
    { name: "invalid UTF-8 email", headers: {}, body: frame(Uint8Array.from([0x0a, 3, 0xff, 0xfe, 0xc3, 0x10, 7])) },
    { name: "unknown service", path: "/otp.v1.Nope/SendOtp", headers: {}, body: frame(sendOtp) },
    { name: "authorization garbage on a Stytch RPC", path: "/otp.v1.OtpService/SendEmailOtp", headers: { authorization: "Basic \u00ff" }, body: frame(sendOtp) },
    { name: "grpc-web+json with a JSON body over h2", headers: { "content-type": "application/grpc-web+json" }, body: frame(Buffer.from('{"email":')) },
  ];
  const session = http2.connect(`http://127.0.0.1:${port}`, { maxHeaderListPairs: 10_000 } as http2.SecureClientSessionOptions);
  session.on("error", () => {});
  const results: H2Result[] = [];
  for (const c of cases) {
    const headers: http2.OutgoingHttpHeaders = {
      ":method": "POST",
      ":path": c.path ?? "/otp.v1.OtpService/SendOtp",
      "content-type": "application/grpc",
      te: "trailers",
      ...c.headers,
    };
    if (headers["content-type"] === "") delete headers["content-type"];
    let s = session;
    if (s.destroyed || s.closed) {
      s = http2.connect(`http://127.0.0.1:${port}`);
      s.on("error", () => {});
    }
    const result = await new Promise<H2Result>((resolve) => {
      let status: number | undefined;
      let grpcStatus: string | undefined;
      let grpcMessage = "";
      const timer = setTimeout(() => done("timeout"), 10_000);
      const done = (how: string) => {
        clearTimeout(timer);
        const error = how !== "end" || (status !== undefined && status !== 200) || (grpcStatus !== undefined && grpcStatus !== "0");
        resolve({
          name: c.name,
          valid: c.valid ?? false,
          http: status,
          error: error && how !== "timeout",
          outcome: `${how} :status ${status} grpc-status ${grpcStatus}${grpcMessage ? ` (${decodeURIComponent(grpcMessage).slice(0, 80)})` : ""}`,
        });
      };
      let req: http2.ClientHttp2Stream;
      try {
        req = s.request(headers);
      } catch (err) {
        done(`client refused to send: ${(err as Error).message}`);
        return;
      }
      req.on("response", (h) => {
        status = Number(h[":status"]);
        if (h["grpc-status"] !== undefined) grpcStatus = String(h["grpc-status"]);
        if (h["grpc-message"] !== undefined) grpcMessage = String(h["grpc-message"]);
      });
      req.on("trailers", (t) => {
        if (t["grpc-status"] !== undefined) grpcStatus = String(t["grpc-status"]);
        if (t["grpc-message"] !== undefined) grpcMessage = String(t["grpc-message"]);
      });
      // gRPC-Web carries its status in a trailer frame inside the body.
      req.on("data", (chunk: Buffer) => {
        const m = /grpc-status:\s*(\d+)/i.exec(chunk.toString("latin1"));
        if (m) grpcStatus = m[1];
      });
      req.on("end", () => done("end"));
      req.on("error", (err) => done(`stream error ${(err as NodeJS.ErrnoException).code ?? err.message}`));
      if (c.body) req.end(c.body);
      else req.end();
    });
    results.push(result);
  }
  session.close();
  return results;
}
