// The fuzz suite's requests: random ones over given routes (credentials
// good and bad, hostile path variables and query strings, content types,
// encodings, Connect headers, bodies), the largest inputs, and raw HTTP/1.1
// byte streams no client library would send.
import fc from "fast-check";
import { bodyBytes, bodyText, type Built, CONTENT_TYPES, enc, FIELDS, hostileString, nested, printable, type Target } from "./fuzz-inputs.js";

export interface FuzzCredentials {
  /** "Basic …" of the demo project, which must survive the run. */
  readonly basic: string;
  readonly projectId: string;
  readonly adminToken: string;
  /** MAX_BODY_BYTES of the service under test. */
  readonly maxBody: number;
}

export function fuzzRequests(creds: FuzzCredentials) {
  const authHeader = () =>
    fc.oneof(
      { weight: 3, arbitrary: fc.constant(creds.basic) },
      { weight: 1, arbitrary: fc.constant(`Basic ${Buffer.from(`${creds.projectId}:wrong-secret`).toString("base64")}`) },
      { weight: 2, arbitrary: fc.constant(`Bearer ${creds.adminToken}`) },
      fc.constant(undefined),
      fc.constantFrom("Basic", "Basic ", "Basic ====", "Basic Og==", "Basic YTo=", "Bearer", "Bearer x", `basic ${Buffer.from(":").toString("base64")}`, "Digest x"),
      printable.map((s) => `Basic ${Buffer.from(s).toString("base64")}`),
      fc.integer({ min: 1000, max: 12_000 }).map((n) => `Bearer ${"a".repeat(n)}`),
    );

  const pathVariable = fc.oneof(
    hostileString.map((s) => enc(s.slice(0, 300))),
    fc.constantFrom("%", "%zz", "%E0%A4%A", "%00", "%2F", "..", "%C0%AF", "7", "0", "-1", "99999999999999999999"),
    fc.constant("PROJECT"),
  );

  const queryString = fc
    .array(
      fc.tuple(
        fc.oneof(fc.constantFrom(...FIELDS, "email", "businessId", "business_id", "limit", "since"), printable),
        fc.oneof(hostileString.map((s) => enc(s.slice(0, 500))), fc.constantFrom("%", "%zz", "%E0%A4%A", "%FF", "+", "&&", "=", "7", "jane.doe%40example.com")),
      ),
      { maxLength: 5 },
    )
    .map((pairs) => (pairs.length ? `?${pairs.map(([k, v]) => `${enc(k)}=${v}`).join("&")}` : ""));

  const request = (targets: readonly Target[]) =>
    fc
      .record({
        target: fc.constantFrom(...targets),
        method: fc.oneof({ weight: 6, arbitrary: fc.constant(undefined) }, fc.constantFrom("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "FOO")),
        variable: pathVariable,
        suffix: fc.oneof({ weight: 8, arbitrary: fc.constant("") }, fc.constantFrom("/", "//", "/extra", "%2F", ";x", "/..")),
        query: queryString,
        authorization: authHeader(),
        contentType: fc.oneof({ weight: 5, arbitrary: fc.constant("application/json") }, fc.constantFrom(...CONTENT_TYPES), printable),
        encoding: fc.oneof({ weight: 6, arbitrary: fc.constant(undefined) }, fc.constantFrom("gzip", "br", "deflate", "identity", "zstd", "x-nope", "gzip, gzip")),
        connectHeaders: fc.oneof(
          { weight: 4, arbitrary: fc.constant({}) },
          fc.record(
            {
              "connect-protocol-version": fc.constantFrom("1", "2", "", "x"),
              "connect-timeout-ms": fc.constantFrom("1", "0", "-1", "abc", "99999999999999999999", "10000"),
              "connect-content-encoding": fc.constantFrom("gzip", "br", "nope"),
              "x-forwarded-for": printable,
              "user-agent": fc.oneof(printable, fc.integer({ min: 1, max: 8000 }).map((n) => "u".repeat(n))),
              "accept-encoding": fc.constantFrom("gzip", "br", "*", "nope;q=x"),
            },
            { requiredKeys: [] },
          ),
        ),
        body: fc.oneof({ weight: 3, arbitrary: bodyText }, bodyBytes, fc.constant(undefined)),
      })
      .map(({ target, method, variable, suffix, query, authorization, contentType, encoding, connectHeaders, body }): Built => {
        const m = method ?? target.method;
        // The demo project's secret must survive the run: admin calls never name it.
        const id = variable === "PROJECT" ? (target.kind === "admin" ? "project-test-not-the-demo" : creds.projectId) : variable;
        const path = target.path.replace("{id}", id) + suffix + query;
        const headers: Record<string, string> = { ...(connectHeaders as Record<string, string>) };
        if (authorization !== undefined) headers.authorization = authorization;
        if (contentType) headers["content-type"] = contentType;
        if (encoding) headers["content-encoding"] = encoding;
        const sendsBody = m !== "GET" && m !== "HEAD" && body !== undefined;
        return { method: m, path, headers, body: sendsBody ? body : undefined, label: `${m} ${path.slice(0, 120)}` };
      });

  const huge = () => {
    const cases: Built[] = [
    ...[100_000, 50_000, 10_000].flatMap((depth): Built[] =>
      (["array", "object"] as const).flatMap((kind): Built[] => [
        { method: "POST", path: "/v1/otps/email/login_or_create", headers: { authorization: creds.basic, "content-type": "application/json" }, body: nested(depth, kind), label: `deep ${kind} ${depth} stytch` },
        { method: "POST", path: "/v1/otps/authenticate", headers: { authorization: creds.basic, "content-type": "application/json" }, body: `{"method_id":"x","code":"123456","session_custom_claims":${nested(depth, kind === "array" ? "object" : "object")}}`, label: `deep claims ${depth}` } as Built,
        { method: "POST", path: "/otp.v1.OtpService/SendOtp", headers: { "content-type": "application/json" }, body: `{"email":${nested(depth, kind)}}`, label: `deep ${kind} ${depth} connect` },
        { method: "POST", path: "/api/sys/users/exchange", headers: { "content-type": "application/json" }, body: nested(depth, kind), label: `deep ${kind} ${depth} legacy` },
        { method: "POST", path: "/admin/v1/projects", headers: { authorization: `Bearer ${creds.adminToken}`, "content-type": "application/json" }, body: `{"name":"x","branding":${nested(depth, kind)}}`, label: `deep ${kind} ${depth} admin` },
      ]),
    ),
    { method: "POST", path: "/v1/otps/email/send", headers: { authorization: creds.basic, "content-type": "application/json" }, body: `{"email":"${"a".repeat(creds.maxBody * 2)}"}`, label: "2 MiB body" },
    { method: "POST", path: "/otp.v1.OtpService/SendOtp", headers: { "content-type": "application/json" }, body: `{"email":"${"a".repeat(creds.maxBody - 20)}"}`, label: "1 MiB string" },
    { method: "POST", path: "/otp.v1.OtpService/SendOtp", headers: { "content-type": "application/proto" }, body: new Uint8Array(creds.maxBody - 10).fill(0x0a), label: "1 MiB proto garbage" },
    { method: "POST", path: "/v1/otps/email/send", headers: { authorization: creds.basic, "content-type": "application/json" }, body: `{${Array.from({ length: 40_000 }, (_, i) => `"k${i}":1`).join(",")}}`, label: "40k keys" },
    { method: "POST", path: "/v1/otps/email/send", headers: { authorization: creds.basic, "content-type": "application/json" }, body: `{"email":"a@example.com","email":"b@example.com","__proto__":{"polluted":1}}`, label: "duplicate keys and __proto__" },
    ];
    return fc.constantFrom(...cases);
  };

  return { request, huge };
}

/** A raw HTTP/1.1 request: a request line, up to four headers and a body, sent with Connection: close. */
export function rawHttpRequest(): fc.Arbitrary<string> {
  const line = fc.oneof(
    fc.constantFrom(
      "GET /api/sys/users/sendOtp?email=%ZZ&businessId=7 HTTP/1.1",
      "POST /v1/otps/email/send HTTP/1.1",
      "POST /otp.v1.OtpService/SendOtp HTTP/1.1",
      "GET /healthz HTTP/1.0",
      "GET /\u00ff\u00fe HTTP/1.1",
      "GET http://evil.example/healthz HTTP/1.1",
      "GET * HTTP/1.1",
      "OPTIONS * HTTP/1.1",
      "GET /healthz HTTP/9.9",
      "GET /healthz",
      "PRI * HTTP/1.1",
    ),
    fc.tuple(fc.constantFrom("GET", "POST", "XYZ", "G ET", ""), printable).map(([m, p]) => `${m} /${p} HTTP/1.1`),
  );
  const header = fc.oneof(
    fc.constantFrom(
      "Content-Length: 5", "Content-Length: -1", "Content-Length: 99999999999999999999", "Content-Length: 1\r\nContent-Length: 2",
      "Transfer-Encoding: chunked", "Transfer-Encoding: chunked\r\nContent-Length: 3", "Transfer-Encoding: gzip, chunked",
      "Content-Type: application/json", "Content-Type: application/json; charset=\u00ff", "Authorization: Basic \u00ff\u00fe",
      "X-Folded: a\r\n b", "Bad Header: x", ": empty-name", "X-Nul: a\u0000b", "Expect: 100-continue", "Connection: upgrade\r\nUpgrade: h2c",
      "Host: \u00ff", "Host: a\r\nHost: b", `X-Long: ${"a".repeat(20_000)}`,
    ),
    printable.map((s) => `X-R: ${s}`),
  );
  const body = fc.oneof(
    fc.constant(""),
    fc.constantFrom("5\r\nhello\r\n0\r\n\r\n", "zz\r\nhello\r\n0\r\n\r\n", "ffffffffffffffff\r\n", '{"email":"jane.doe@example.com","businessId":7}'),
    fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b).toString("latin1")),
  );
  return fc
    .tuple(line, fc.array(header, { maxLength: 4 }), body)
    .map(([l, hs, b]) => `${l}\r\nHost: 127.0.0.1\r\n${hs.map((h) => `${h}\r\n`).join("")}Connection: close\r\n\r\n${b}`);
}
