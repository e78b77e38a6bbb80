// The admin API test kit: one TestEnv per file with ADMIN_TOKEN set, two
// drivers over one interface (REST with a bearer token, and Connect), and
// the calls outside the admin API the admin tests make (Stytch and legacy
// sends, mail arrival, header parsing).
import { fromJson, toJson, type DescMessage, type JsonObject, type Message } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, expect } from "vitest";
import { AdminService } from "../../gen/otp/v1/admin_service_pb.js";
import { type Json, emailFactory, mailbox } from "./answers.js";
import { startTestEnv, type TestEnv } from "./app.js";
import type { ReceivedMail } from "./smtp.js";

export const TOKEN = "admin-api-test-token-0123456789abcdef";
export const USER_AGENT = "admin-api-test/1.0";
export const RUN = Date.now().toString(36);

let current: TestEnv | undefined;
/** Starts this file's service (ADMIN_TOKEN set) before its tests and stops it after. */
export function useAdminTestEnv(): void {
  beforeAll(async () => {
    current = await startTestEnv({ ADMIN_TOKEN: TOKEN });
  });
  afterAll(async () => {
    await current?.close();
  });
}
/** This file's service. */
export function env(): TestEnv {
  if (!current) throw new Error("useAdminTestEnv() was not called in this file");
  return current;
}

export const freshEmail = emailFactory();
/** Business numbers no other scenario (nor the test env's 7000–7999) uses. */
let nextBusiness = 30_000 + Math.floor(Math.random() * 10_000) * 10;
export const freshBusinessId = () => ++nextBusiness;

// ---------------------------------------------------------------------------
// Two ways to call the admin API, one interface: JSON in (proto field names),
// JSON out (proto field names, every field), an ApiError on failure.
// ---------------------------------------------------------------------------

export class ApiError extends Error {
  constructor(
    /** Connect's code name in snake_case: "invalid_argument". */
    readonly code: string,
    message: string,
    /** The HTTP status, for REST. */
    readonly status: number | undefined,
  ) {
    super(message);
  }
}

export type Rpc = keyof typeof AdminService.method;

/** The REST routes as the proto documents them (written out, not read from the schema). */
const ROUTES: Record<Rpc, { verb: string; path: string; body?: true }> = {
  createProject: { verb: "POST", path: "/admin/v1/projects", body: true },
  listProjects: { verb: "GET", path: "/admin/v1/projects" },
  updateProject: { verb: "PATCH", path: "/admin/v1/projects/{project_id}", body: true },
  rotateProjectSecret: { verb: "POST", path: "/admin/v1/projects/{project_id}/rotate_secret", body: true },
  rotateSigningKeys: { verb: "POST", path: "/admin/v1/signing_keys/rotate", body: true },
  upsertBusiness: { verb: "PUT", path: "/admin/v1/businesses/{business_id}", body: true },
  listBusinesses: { verb: "GET", path: "/admin/v1/businesses" },
  setTemplate: { verb: "PUT", path: "/admin/v1/templates", body: true },
  listTemplates: { verb: "GET", path: "/admin/v1/templates" },
  deleteTemplate: { verb: "DELETE", path: "/admin/v1/templates/{template_id}" },
  addUser: { verb: "POST", path: "/admin/v1/users", body: true },
  listUsers: { verb: "GET", path: "/admin/v1/users" },
  removeUser: { verb: "DELETE", path: "/admin/v1/users/{user_id}" },
  listAuditEvents: { verb: "GET", path: "/admin/v1/audit_events" },
  getDeliveryStatus: { verb: "GET", path: "/admin/v1/deliveries/{email_id}" },
};

export interface Driver {
  readonly name: "REST" | "Connect";
  call(rpc: Rpc, req?: Record<string, unknown>): Promise<Json>;
}

export async function rest(method: string, path: string, opts: { token?: string | null; body?: unknown; url?: string } = {}) {
  const headers: Record<string, string> = { "user-agent": USER_AGENT };
  const token = opts.token === undefined ? TOKEN : opts.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (opts.body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(`${opts.url ?? env().url}${path}`, {
    method,
    headers,
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
  });
  const text = await res.text();
  expect(res.headers.get("content-type"), text).toMatch(/^application\/json/);
  return { status: res.status, body: JSON.parse(text) as Json, text };
}

export const restDriver: Driver = {
  name: "REST",
  async call(rpc, req = {}) {
    const route = ROUTES[rpc];
    const rest_ = { ...req };
    const path = route.path.replace(/\{(\w+)\}/g, (_, name: string) => {
      const value = rest_[name];
      delete rest_[name];
      return encodeURIComponent(String(value));
    });
    let url = path;
    if (!route.body) {
      const query = new URLSearchParams();
      for (const [k, v] of Object.entries(rest_)) query.set(k, String(v));
      if ([...query].length > 0) url += `?${query}`;
    }
    const res = await rest(route.verb, url, { body: route.body ? rest_ : undefined });
    if (res.status !== 200) {
      expect(Object.keys(res.body).sort(), res.text).toEqual(["code", "message"]);
      throw new ApiError(res.body.code, res.body.message, res.status);
    }
    return res.body;
  },
};

export function adminClient(token: string | undefined, baseUrl = env().url): Client<typeof AdminService> {
  return createClient(
    AdminService,
    createConnectTransport({
      baseUrl,
      httpVersion: "1.1",
      interceptors:
        token === undefined
          ? []
          : [
              (next) => (req) => {
                req.header.set("authorization", `Bearer ${token}`);
                return next(req);
              },
            ],
    }),
  );
}

const snake = (code: Code) => Code[code].replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();

export const connectDriver: Driver = {
  name: "Connect",
  async call(rpc, req = {}) {
    const method = AdminService.method[rpc] as { input: DescMessage; output: DescMessage };
    const client = adminClient(TOKEN) as unknown as Record<Rpc, (m: Message) => Promise<Message>>;
    try {
      const res = await client[rpc](fromJson(method.input, req as JsonObject));
      return toJson(method.output, res, { useProtoFieldName: true, alwaysEmitImplicit: true });
    } catch (err) {
      if (!(err instanceof ConnectError)) throw err;
      throw new ApiError(snake(err.code), err.rawMessage, undefined);
    }
  },
};

/** The ApiError a call fails with; fails the test if the call succeeds. */
export async function failure(call: Promise<unknown>): Promise<ApiError> {
  try {
    await call;
  } catch (err) {
    if (err instanceof ApiError) return err;
    throw err;
  }
  throw new Error("expected the call to fail, but it succeeded");
}

export function expectFailure(driver: Driver, err: ApiError, code: string, status: number, message: RegExp): void {
  expect(err.code, err.message).toBe(code);
  if (driver.name === "REST") expect(err.status).toBe(status);
  expect(err.message).toMatch(message);
}

// ---------------------------------------------------------------------------
// Calls outside the admin API
// ---------------------------------------------------------------------------

export const basic = (projectId: string, secret: string) => `Basic ${Buffer.from(`${projectId}:${secret}`).toString("base64")}`;

export async function stytch(path: string, authorization: string, body: Record<string, unknown>) {
  const res = await fetch(`${env().url}${path}`, {
    method: "POST",
    headers: { authorization, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Json };
}

export const loginOrCreate = (authorization: string, body: Record<string, unknown>) =>
  stytch("/v1/otps/email/login_or_create", authorization, body);

export async function legacySend(email: string, businessId: number) {
  const res = await fetch(`${env().url}/api/sys/users/sendOtp?email=${encodeURIComponent(email)}&businessId=${businessId}`, {
    headers: { "user-agent": USER_AGENT },
  });
  expect(res.status).toBe(200);
  expect(await res.json()).toMatchObject({ WasSuccessful: true, Status: 200 });
}

/** The nth mail to `address`, once it has arrived. */
export const mailTo = (address: string, nth = 1, timeoutMs = 10_000): Promise<ReceivedMail> =>
  mailbox(() => env().smtp).waitForMailTo(address, nth, timeoutMs);

export function expectRecent(iso: unknown, aroundMs = Date.now(), windowMs = 60_000): void {
  expect(typeof iso).toBe("string");
  const t = Date.parse(iso as string);
  expect(Number.isNaN(t)).toBe(false);
  expect(Math.abs(t - aroundMs)).toBeLessThan(windowMs);
}

export const PROJECT_ID = /^project-test-[0-9a-f-]{36}$/;
export const SECRET = /^secret-test-[A-Za-z0-9_-]{32}$/;
export const USER_ID = /^user-test-[0-9a-f-]{36}$/;
export const EMAIL_ID = /^email-test-[0-9a-f-]{36}$/;
export const TEMPLATE_ID = /^template-[0-9a-f]{24}$/;

export const NO_BRANDING = {
  sender_name: "",
  sender_address: "",
  reply_to: "",
  logo_url: "",
  accent_color: "",
  support_url: "",
  default_locale: "en",
};

// ---------------------------------------------------------------------------
// Mail headers
// ---------------------------------------------------------------------------

/** The header section of a raw mail, unfolded, as [name, value] pairs in order. */
export function headersOf(raw: string): [string, string][] {
  const end = raw.search(/\r?\n\r?\n/);
  expect(end).toBeGreaterThan(0);
  return raw
    .slice(0, end)
    .replace(/\r?\n[ \t]+/g, " ")
    .split(/\r?\n/)
    .map((line) => {
      const colon = line.indexOf(":");
      expect(colon, line).toBeGreaterThan(0);
      return [line.slice(0, colon), line.slice(colon + 1).trim()] as [string, string];
    });
}

export function headerValues(raw: string, name: string): string[] {
  return headersOf(raw)
    .filter(([n]) => n.toLowerCase() === name.toLowerCase())
    .map(([, v]) => v);
}

/** Decodes RFC 2047 encoded words (B and Q, UTF-8), joining adjacent ones. */
export function decodeWords(value: string): string {
  return value
    .replace(/(\?=)\s+(=\?)/g, "$1$2")
    .replace(/=\?utf-8\?([BQ])\?([^?]*)\?=/gi, (_, enc: string, text: string) =>
      enc.toUpperCase() === "B"
        ? Buffer.from(text, "base64").toString("utf8")
        : Buffer.from(text.replace(/_/g, " ").replace(/=([0-9A-F]{2})/gi, (__, h: string) => String.fromCharCode(parseInt(h, 16))), "latin1").toString("utf8"),
    );
}

let names = 0;
/** A tenant name unique to this run: `<tag> <run> <n>`. */
export const freshName = (tag: string) => `${tag} ${RUN} ${++names}`;
