// AdminService end to end, with ADMIN_TOKEN set: every RPC over REST
// (/admin/v1/…, Authorization: Bearer) and over the Connect protocol; the
// token check and the API being off without a token; the field rules on
// branding; and what tenants' settings do to the mail that reaches the SMTP
// server (locale, sender, Reply-To, logo, custom templates, header safety).
// Real Postgres, real SMTP.
import { fromJson, toJson, type DescMessage, type JsonObject, type Message } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AdminService } from "../../gen/otp/v1/admin_service_pb.js";
import { PgAdminStore } from "../../src/storage/admin-store.js";
import { addTestUser, startTestEnv, type TestEnv } from "../support/app.js";
import type { Json } from "../support/answers.js";
import { codeIn, type ReceivedMail } from "../support/smtp.js";

const TOKEN = "admin-api-test-token-0123456789abcdef";
const USER_AGENT = "admin-api-test/1.0";

let env: TestEnv;
beforeAll(async () => {
  env = await startTestEnv({ ADMIN_TOKEN: TOKEN });
});
afterAll(async () => {
  await env?.close();
});

const RUN = Date.now().toString(36);
let counter = 0;
function freshEmail(tag: string): string {
  counter += 1;
  return `${tag}-${counter}-${RUN}@example.com`;
}
/** Business numbers no other scenario (nor the test env's 7000–7999) uses. */
let nextBusiness = 30_000 + Math.floor(Math.random() * 10_000) * 10;
const freshBusinessId = () => ++nextBusiness;

// ---------------------------------------------------------------------------
// Two ways to call the admin API, one interface: JSON in (proto field names),
// JSON out (proto field names, every field), an ApiError on failure.
// ---------------------------------------------------------------------------

class ApiError extends Error {
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

type Rpc = keyof typeof AdminService.method;

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


interface Driver {
  readonly name: "REST" | "Connect";
  call(rpc: Rpc, req?: Record<string, unknown>): Promise<Json>;
}

async function rest(method: string, path: string, opts: { token?: string | null; body?: unknown; url?: string } = {}) {
  const headers: Record<string, string> = { "user-agent": USER_AGENT };
  const token = opts.token === undefined ? TOKEN : opts.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (opts.body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(`${opts.url ?? env.url}${path}`, {
    method,
    headers,
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
  });
  const text = await res.text();
  expect(res.headers.get("content-type"), text).toMatch(/^application\/json/);
  return { status: res.status, body: JSON.parse(text) as Json, text };
}

const restDriver: Driver = {
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

function adminClient(token: string | undefined, baseUrl = env.url): Client<typeof AdminService> {
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

const connectDriver: Driver = {
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
async function failure(call: Promise<unknown>): Promise<ApiError> {
  try {
    await call;
  } catch (err) {
    if (err instanceof ApiError) return err;
    throw err;
  }
  throw new Error("expected the call to fail, but it succeeded");
}

function expectFailure(driver: Driver, err: ApiError, code: string, status: number, message: RegExp): void {
  expect(err.code, err.message).toBe(code);
  if (driver.name === "REST") expect(err.status).toBe(status);
  expect(err.message).toMatch(message);
}

// ---------------------------------------------------------------------------
// Calls outside the admin API
// ---------------------------------------------------------------------------

const basic = (projectId: string, secret: string) => `Basic ${Buffer.from(`${projectId}:${secret}`).toString("base64")}`;

async function stytch(path: string, authorization: string, body: Record<string, unknown>) {
  const res = await fetch(`${env.url}${path}`, {
    method: "POST",
    headers: { authorization, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Json };
}

const loginOrCreate = (authorization: string, body: Record<string, unknown>) =>
  stytch("/v1/otps/email/login_or_create", authorization, body);

async function legacySend(email: string, businessId: number) {
  const res = await fetch(`${env.url}/api/sys/users/sendOtp?email=${encodeURIComponent(email)}&businessId=${businessId}`, {
    headers: { "user-agent": USER_AGENT },
  });
  expect(res.status).toBe(200);
  expect(await res.json()).toMatchObject({ WasSuccessful: true, Status: 200 });
}

/** The first mail to `address`, once it has arrived. */
async function mailTo(address: string, nth = 1, timeoutMs = 10_000): Promise<ReceivedMail> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const mails = env.smtp.mails.filter((m) => m.to === address);
    if (mails.length >= nth) return mails[nth - 1]!;
    if (Date.now() > deadline) throw new Error(`no mail #${nth} to ${address} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

function expectRecent(iso: unknown, aroundMs = Date.now(), windowMs = 60_000): void {
  expect(typeof iso).toBe("string");
  const t = Date.parse(iso as string);
  expect(Number.isNaN(t)).toBe(false);
  expect(Math.abs(t - aroundMs)).toBeLessThan(windowMs);
}

const PROJECT_ID = /^project-test-[0-9a-f-]{36}$/;
const SECRET = /^secret-test-[A-Za-z0-9_-]{32}$/;
const USER_ID = /^user-test-[0-9a-f-]{36}$/;
const EMAIL_ID = /^email-test-[0-9a-f-]{36}$/;
const TEMPLATE_ID = /^template-[0-9a-f]{24}$/;

const NO_BRANDING = {
  sender_name: "",
  sender_address: "",
  reply_to: "",
  logo_url: "",
  accent_color: "",
  support_url: "",
  default_locale: "en",
};

// ---------------------------------------------------------------------------
// Every RPC, over each driver
// ---------------------------------------------------------------------------

describe.each([restDriver, connectDriver])("AdminService over $name", (api) => {
  const tag = `${api.name}-${RUN}`;
  const branding = {
    logo_url: `https://cdn.example.com/${api.name}/logo.png`,
    accent_color: "#0a7d5a",
    support_url: "https://help.example.com/otp",
  };
  let project: Json;
  let secret: string;

  it("CreateProject: a project with its branding, and a secret that authenticates Stytch sends", async () => {
    const res = await api.call("createProject", { name: `Studio ${tag}`, branding });
    expect(Object.keys(res).sort()).toEqual(["project", "secret"]);
    expect(res.project).toEqual({
      project_id: expect.stringMatching(PROJECT_ID),
      name: `Studio ${tag}`,
      live: false,
      branding: { ...NO_BRANDING, ...branding },
      created_at: expect.any(String),
    });
    expectRecent(res.project.created_at);
    expect(res.secret).toMatch(SECRET);
    project = res.project;
    secret = res.secret;

    const sent = await loginOrCreate(basic(project.project_id, secret), { email: freshEmail("create") });
    expect(sent.status, JSON.stringify(sent.body)).toBe(200);
    expect(sent.body.user_created).toBe(true);
    const wrong = await loginOrCreate(basic(project.project_id, `${secret}x`), { email: freshEmail("create") });
    expect(wrong.status).toBe(401);
  });

  it("ListProjects: every project, oldest first, with branding", async () => {
    const res = await api.call("listProjects");
    const ids = res.projects.map((p: Json) => p.project_id);
    expect(ids).toContain(env.project.projectId);
    expect(ids.indexOf(env.project.projectId)).toBeLessThan(ids.indexOf(project.project_id));
    expect(res.projects.find((p: Json) => p.project_id === project.project_id)).toEqual(project);
  });

  it("UpdateProject: renames and rebrands; fields left empty keep their stored values", async () => {
    const res = await api.call("updateProject", {
      project_id: project.project_id,
      name: `Studio ${tag} renamed`,
      branding: { sender_name: "Studio Desk", default_locale: "es" },
    });
    expect(res.project).toEqual({
      ...project,
      name: `Studio ${tag} renamed`,
      branding: { ...project.branding, sender_name: "Studio Desk", default_locale: "es" },
    });
    // Only the name: branding untouched.
    const again = await api.call("updateProject", { project_id: project.project_id, name: `Studio ${tag} again` });
    expect(again.project.branding).toEqual(res.project.branding);
    const listed = (await api.call("listProjects")).projects.find((p: Json) => p.project_id === project.project_id);
    expect(listed).toEqual(again.project);
    project = again.project;

    const missing = await failure(api.call("updateProject", { project_id: "project-test-00000000-0000-0000-0000-000000000000", name: "x" }));
    expectFailure(api, missing, "not_found", 404, /project_id/);
  });

  it("RotateProjectSecret: a new secret; the old one still authenticates during the grace period (60 minutes by default)", async () => {
    const before = Date.now();
    const res = await api.call("rotateProjectSecret", { project_id: project.project_id });
    expect(Object.keys(res).sort()).toEqual(["previous_valid_until", "secret"]);
    expect(res.secret).toMatch(SECRET);
    expect(res.secret).not.toBe(secret);
    expectRecent(res.previous_valid_until, before + 60 * 60_000, 30_000);

    const withNew = await loginOrCreate(basic(project.project_id, res.secret), { email: freshEmail("rotated-new") });
    expect(withNew.status, JSON.stringify(withNew.body)).toBe(200);
    const withOld = await loginOrCreate(basic(project.project_id, secret), { email: freshEmail("rotated-old") });
    expect(withOld.status, JSON.stringify(withOld.body)).toBe(200);
    const wrong = await loginOrCreate(basic(project.project_id, "secret-test-nope"), { email: freshEmail("rotated-wrong") });
    expect(wrong.status).toBe(401);

    const explicit = await api.call("rotateProjectSecret", { project_id: project.project_id, grace_minutes: 5 });
    expectRecent(explicit.previous_valid_until, Date.now() + 5 * 60_000, 30_000);
    secret = explicit.secret;

    const tooLong = await failure(api.call("rotateProjectSecret", { project_id: project.project_id, grace_minutes: 10_081 }));
    expectFailure(api, tooLong, "invalid_argument", 400, /grace_minutes/);
  });

  it("RotateProjectSecret with grace_minutes 0: the old secret is refused with 401 at once", async () => {
    const created = await api.call("createProject", { name: `No grace ${tag}` });
    const id = created.project.project_id;
    const res = await api.call("rotateProjectSecret", { project_id: id, grace_minutes: 0 });
    expectRecent(res.previous_valid_until, Date.now(), 30_000);
    const old = await loginOrCreate(basic(id, created.secret), { email: freshEmail("nograce-old") });
    expect(old.status).toBe(401);
    expect(old.body.error_type).toBe("unauthorized_credentials");
    const fresh = await loginOrCreate(basic(id, res.secret), { email: freshEmail("nograce-new") });
    expect(fresh.status, JSON.stringify(fresh.body)).toBe(200);
  });

  describe("grace_minutes 0 after the old secret was in use", () => {
    let id: string;
    let oldSecret: string;
    let newSecret: string;

    beforeAll(async () => {
      const created = await api.call("createProject", { name: `Busy ${tag}` });
      id = created.project.project_id;
      oldSecret = created.secret;
      // The secret authenticates a call on this instance just before the rotation.
      const used = await loginOrCreate(basic(id, oldSecret), { email: freshEmail("busy-before") });
      expect(used.status).toBe(200);
      newSecret = (await api.call("rotateProjectSecret", { project_id: id, grace_minutes: 0 })).secret;
    });

    it("an instance that never saw the old secret refuses it", async () => {
      const other = await env.startInstance();
      const res = await fetch(`${other.url}/v1/otps/email/login_or_create`, {
        method: "POST",
        headers: { authorization: basic(id, oldSecret), "content-type": "application/json" },
        body: JSON.stringify({ email: freshEmail("busy-other") }),
      });
      expect(res.status).toBe(401);
      expect((await loginOrCreate(basic(id, newSecret), { email: freshEmail("busy-new") })).status).toBe(200);
    });

    // The rotating instance forgets the project's verified secrets at once
    // (other instances within their 60 s cache lifetime).
    it("the instance that had just verified the old secret refuses it too", async () => {
      const old = await loginOrCreate(basic(id, oldSecret), { email: freshEmail("busy-after") });
      expect(old.status).toBe(401);
    });
  });

  let businessId: number;
  const businessBranding = {
    sender_name: "Harbour Desk",
    sender_address: "hello@harbour.example.com",
    reply_to: "desk@harbour.example.com",
    logo_url: "https://harbour.example.com/logo.png",
    accent_color: "#ABC",
    support_url: "https://harbour.example.com/help",
    default_locale: "pt-br",
  };

  it("UpsertBusiness: creates a business with branding, then updates its name keeping the branding", async () => {
    businessId = freshBusinessId();
    const created = await api.call("upsertBusiness", { business_id: businessId, name: `Harbour ${tag}`, branding: businessBranding });
    expect(created).toEqual({
      business: { business_id: String(businessId), name: `Harbour ${tag}`, branding: businessBranding, created_at: expect.any(String) },
      created: true,
    });
    expectRecent(created.business.created_at);

    const updated = await api.call("upsertBusiness", { business_id: businessId, name: `Harbour ${tag} II` });
    expect(updated).toEqual({ business: { ...created.business, name: `Harbour ${tag} II` }, created: false });

    const rebranded = await api.call("upsertBusiness", {
      business_id: businessId,
      name: `Harbour ${tag} II`,
      branding: { accent_color: "#123456" },
    });
    expect(rebranded.business.branding).toEqual({ ...businessBranding, accent_color: "#123456" });
  });

  it("ListBusinesses: every business by number, with branding", async () => {
    const res = await api.call("listBusinesses");
    const numbers = res.businesses.map((b: Json) => Number(b.business_id));
    expect(numbers).toContain(env.businessId);
    expect(numbers).toContain(businessId);
    expect([...numbers].sort((a, b) => a - b)).toEqual(numbers);
    const ours = res.businesses.find((b: Json) => Number(b.business_id) === businessId);
    expect(ours.name).toBe(`Harbour ${tag} II`);
    expect(ours.branding).toEqual({ ...businessBranding, accent_color: "#123456" });
  });

  it("SetTemplate / ListTemplates / DeleteTemplate, with malformed templates refused by field", async () => {
    const template = {
      kind: "signup",
      name: "welcome",
      subject: "Welcome to {{tenant_name}}",
      text_body: "Your code is {{code}}.",
      html_body: "<p>Your code is <b>{{code}}</b>.</p>",
    };
    const set = await api.call("setTemplate", { project_id: project.project_id, ...template });
    expect(set.template).toEqual({ template_id: expect.stringMatching(TEMPLATE_ID), ...template, updated_at: expect.any(String) });
    const id = set.template.template_id;

    expect((await api.call("listTemplates", { project_id: project.project_id })).templates).toEqual([set.template]);
    // Another tenant sees none of it.
    expect((await api.call("listTemplates", { business_id: businessId })).templates).toEqual([]);

    const replaced = await api.call("setTemplate", { project_id: project.project_id, template_id: id, ...template, kind: "login", name: "returning" });
    expect(replaced.template).toMatchObject({ template_id: id, kind: "login", name: "returning" });
    const listed = (await api.call("listTemplates", { project_id: project.project_id })).templates;
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({ template_id: id, kind: "login", name: "returning" });

    const noCode = await failure(api.call("setTemplate", { project_id: project.project_id, ...template, text_body: "no code here" }));
    expectFailure(api, noCode, "invalid_argument", 400, /text_body must contain \{\{code\}\}/);
    const unknown = await failure(api.call("setTemplate", { project_id: project.project_id, ...template, html_body: "<p>{{codex}}</p>" }));
    expectFailure(api, unknown, "invalid_argument", 400, /html_body unknown placeholder \{\{codex\}\}/);
    const open = await failure(api.call("setTemplate", { project_id: project.project_id, ...template, text_body: "{{code}} {{code" }));
    expectFailure(api, open, "invalid_argument", 400, /text_body malformed placeholder/);
    const twoLines = await failure(api.call("setTemplate", { project_id: project.project_id, ...template, subject: "a\nb" }));
    expectFailure(api, twoLines, "invalid_argument", 400, /subject must be a single line/);
    const badKind = await failure(api.call("setTemplate", { project_id: project.project_id, ...template, kind: "welcome" }));
    expectFailure(api, badKind, "invalid_argument", 400, /kind must be one of: login, signup/);
    // None of the refused ones was stored.
    expect((await api.call("listTemplates", { project_id: project.project_id })).templates).toHaveLength(1);

    const otherTenants = await failure(api.call("setTemplate", { business_id: businessId, template_id: id, ...template }));
    expectFailure(api, otherTenants, "not_found", 404, /template_id/);

    const businessTemplate = await api.call("setTemplate", { business_id: businessId, ...template });
    expect((await api.call("listTemplates", { business_id: businessId })).templates).toEqual([businessTemplate.template]);

    expect(await api.call("deleteTemplate", { template_id: id })).toEqual({});
    expect((await api.call("listTemplates", { project_id: project.project_id })).templates).toEqual([]);
    const again = await failure(api.call("deleteTemplate", { template_id: id }));
    expectFailure(api, again, "not_found", 404, /template_id/);
  });

  let customer: string;
  let customerUser: Json;

  it("AddUser / ListUsers / RemoveUser: customers of a business, and users of a project", async () => {
    customer = freshEmail("customer");
    const added = await api.call("addUser", { business_id: businessId, email: customer });
    expect(added).toEqual({ user_id: expect.stringMatching(USER_ID), email_id: expect.stringMatching(EMAIL_ID), created: true });
    const twice = await api.call("addUser", { business_id: businessId, email: customer.toUpperCase() });
    expect(twice).toEqual({ ...added, created: false });
    customerUser = added;

    const leaving = await api.call("addUser", { business_id: businessId, email: freshEmail("leaving") });
    const list = (await api.call("listUsers", { business_id: businessId })).users;
    expect(list.map((u: Json) => u.user_id)).toEqual([leaving.user_id, added.user_id]);
    expect(list[1]).toEqual({ user_id: added.user_id, status: "active", emails: [customer], created_at: expect.any(String) });
    expect((await api.call("listUsers", { business_id: businessId, limit: 1 })).users).toHaveLength(1);

    expect(await api.call("removeUser", { user_id: leaving.user_id })).toEqual({});
    expect((await api.call("listUsers", { business_id: businessId })).users.map((u: Json) => u.user_id)).toEqual([added.user_id]);
    const gone = await failure(api.call("removeUser", { user_id: leaving.user_id }));
    expectFailure(api, gone, "not_found", 404, /user_id/);

    const projectUser = await api.call("addUser", { project_id: project.project_id, email: freshEmail("member") });
    expect(projectUser.created).toBe(true);
    const members = (await api.call("listUsers", { project_id: project.project_id })).users.map((u: Json) => u.user_id);
    expect(members).toContain(projectUser.user_id);
    expect(members).not.toContain(added.user_id);

    const noTenant = await failure(api.call("listUsers", {}));
    expectFailure(api, noTenant, "invalid_argument", 400, /project_id or business_id is required/);
    const unknownBusiness = await failure(api.call("addUser", { business_id: 999_999_999, email: freshEmail("nobody") }));
    expectFailure(api, unknownBusiness, "not_found", 404, /business_id/);
    const badEmail = await failure(api.call("addUser", { business_id: businessId, email: "not-an-email" }));
    expectFailure(api, badEmail, "invalid_argument", 400, /email/);
  });

  it("ListAuditEvents: a legacy send to the customer is recorded, newest first, within since/until", async () => {
    const beforeSend = new Date(Date.now() - 1).toISOString();
    await legacySend(customer, businessId);
    await mailTo(customer);
    const events = (await api.call("listAuditEvents", { business_id: businessId })).events;
    expect(events[0]).toEqual({
      occurred_at: expect.any(String),
      action: "send",
      user_id: customerUser.user_id,
      email_id: customerUser.email_id,
      ip_address: "127.0.0.1",
      user_agent: USER_AGENT,
      outcome: "ok",
      reason: "",
    });
    expectRecent(events[0].occurred_at, Date.now(), 10_000);

    const since = (await api.call("listAuditEvents", { business_id: businessId, since: beforeSend })).events;
    expect(since.map((e: Json) => e.email_id)).toEqual([customerUser.email_id]);
    const until = (await api.call("listAuditEvents", { business_id: businessId, until: beforeSend })).events;
    expect(until.map((e: Json) => e.email_id)).not.toContain(customerUser.email_id);
    // Tenants are separate: the project's log does not show the business's send.
    const projectEvents = (await api.call("listAuditEvents", { project_id: project.project_id })).events;
    expect(projectEvents.length).toBeGreaterThan(0);
    expect(projectEvents.map((e: Json) => e.email_id)).not.toContain(customerUser.email_id);
    expect((await api.call("listAuditEvents", { project_id: project.project_id, limit: 1 })).events).toHaveLength(1);
  });

  it("GetDeliveryStatus: the delivered mail shows as sent, with its Message-ID", async () => {
    const mail = await mailTo(customer);
    let deliveries: Json[] = [];
    for (let i = 0; i < 100; i++) {
      deliveries = (await api.call("getDeliveryStatus", { email_id: customerUser.email_id })).deliveries;
      if (deliveries[0]?.status === "sent") break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(deliveries).toEqual([
      {
        message_id: mail.messageId,
        status: "sent",
        attempts: 1,
        last_error: "",
        created_at: expect.any(String),
        sent_at: expect.any(String),
      },
    ]);
    expect(Date.parse(deliveries[0].sent_at)).toBeGreaterThanOrEqual(Date.parse(deliveries[0].created_at));
    // An id no address has is not found (the CLI exits 4), not an empty list.
    const unknown = await failure(api.call("getDeliveryStatus", { email_id: "email-test-00000000-0000-0000-0000-000000000000" }));
    expectFailure(api, unknown, "not_found", 404, /email_id names no email address/);
  });
});

// ---------------------------------------------------------------------------
// The token
// ---------------------------------------------------------------------------

describe("the admin token", () => {
  it.each([
    ["no Authorization header", null],
    ["a wrong token", `${TOKEN}x`],
    ["a prefix of the token", TOKEN.slice(0, 16)],
    ["an empty bearer", ""],
  ])("REST with %s: 401 {code: unauthenticated}", async (_, token) => {
    const res = await rest("GET", "/admin/v1/projects", { token });
    expect(res.status).toBe(401);
    expect(res.body).toEqual({ code: "unauthenticated", message: expect.stringMatching(/admin token/) });
    const post = await rest("POST", "/admin/v1/projects", { token, body: { name: `Sneaky ${RUN}` } });
    expect(post.status).toBe(401);
    expect(post.body.code).toBe("unauthenticated");
  });

  it("a project's Basic credentials are not an admin token", async () => {
    const res = await fetch(`${env.url}/admin/v1/projects`, { headers: { authorization: env.project.authorization } });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ code: "unauthenticated" });
  });

  it("nothing was created by the refused calls", async () => {
    const names = (await restDriver.call("listProjects")).projects.map((p: Json) => p.name);
    expect(names).not.toContain(`Sneaky ${RUN}`);
  });

  it("Connect without a token or with a wrong one: Unauthenticated; with the token: OK", async () => {
    for (const token of [undefined, "wrong-token-0123456789"]) {
      const err = await adminClient(token).listProjects({}).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ConnectError);
      expect((err as ConnectError).code).toBe(Code.Unauthenticated);
    }
    expect((await adminClient(TOKEN).listProjects({})).projects.length).toBeGreaterThan(0);
  });

  it("a server started without ADMIN_TOKEN answers 404 on the admin API, token or not", async () => {
    const off = await env.startInstance({ ADMIN_TOKEN: "" });
    for (const token of [TOKEN, null]) {
      const res = await rest("GET", "/admin/v1/projects", { token, url: off.url });
      expect(res.status).toBe(404);
      expect(res.body.code).toBe("not_found");
    }
    const created = await rest("POST", "/admin/v1/projects", { url: off.url, body: { name: "Off" } });
    expect(created.status).toBe(404);
    const err = await adminClient(TOKEN, off.url).listProjects({}).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((err as ConnectError).code).toBe(Code.NotFound);
    // The same request on the server with a token works: the 404 is the token's absence.
    expect((await rest("GET", "/admin/v1/projects")).status).toBe(200);
  });
});

// ---------------------------------------------------------------------------
// Field rules
// ---------------------------------------------------------------------------

describe("bad branding and names", () => {
  const BAD: [field: string, value: string][] = [
    ["accent_color", "red"],
    ["accent_color", "#12345"],
    ["logo_url", "http://x"],
    ["logo_url", "javascript:alert(1)"],
    ["support_url", "https://help.example.com/a b"],
    ["sender_name", "Desk\r\nBcc: evil@x.com"],
    ["sender_name", "Desk\nBcc: evil@x.com"],
    ["sender_address", "desk@example.com\r\nBcc: evil@x.com"],
    ["reply_to", "not an address"],
    ["default_locale", "de"],
  ];

  it.each(BAD)("CreateProject with branding.%s = %j: 400 naming the field; nothing created", async (field, value) => {
    const name = `Bad ${field} ${RUN} ${counter++}`;
    const res = await rest("POST", "/admin/v1/projects", { body: { name, branding: { [field]: value } } });
    expect(res.status, res.text).toBe(400);
    expect(res.body.code).toBe("invalid_argument");
    expect(res.body.message).toContain(`branding.${field} `);
    if (field === "default_locale") expect(res.body.message).toContain("en, es, pt-br, fr");
    const names = (await restDriver.call("listProjects")).projects.map((p: Json) => p.name);
    expect(names).not.toContain(name);
  });

  it.each(BAD)("UpsertBusiness with branding.%s = %j: 400 naming the field; nothing created", async (field, value) => {
    const id = freshBusinessId();
    const res = await rest("PUT", `/admin/v1/businesses/${id}`, { body: { name: "Bad", branding: { [field]: value } } });
    expect(res.status, res.text).toBe(400);
    expect(res.body.code).toBe("invalid_argument");
    expect(res.body.message).toContain(`branding.${field} `);
    const numbers = (await restDriver.call("listBusinesses")).businesses.map((b: Json) => Number(b.business_id));
    expect(numbers).not.toContain(id);
  });

  it("over Connect: InvalidArgument naming every bad field", async () => {
    const err = await adminClient(TOKEN)
      .createProject({ name: "Bad", branding: { accentColor: "red", logoUrl: "http://x", defaultLocale: "de" } })
      .then(
        () => undefined,
        (e: unknown) => e as ConnectError,
      );
    expect(err?.code).toBe(Code.InvalidArgument);
    for (const field of ["branding.accent_color", "branding.logo_url", "branding.default_locale"]) {
      expect(err?.rawMessage).toContain(field);
    }
  });

  it("a project or business name with CR/LF: 400 naming name", async () => {
    const project = await rest("POST", "/admin/v1/projects", { body: { name: "Acme\r\nBcc: evil@x.com" } });
    expect(project.status).toBe(400);
    expect(project.body.message).toMatch(/^name /);
    const id = freshBusinessId();
    const business = await rest("PUT", `/admin/v1/businesses/${id}`, { body: { name: "Café\r\nBcc: evil@x.com" } });
    expect(business.status).toBe(400);
    expect(business.body).toEqual({ code: "invalid_argument", message: "name must be a single line without control characters" });
  });
});

// ---------------------------------------------------------------------------
// Mail content, end to end
// ---------------------------------------------------------------------------

/** The header section of a raw mail, unfolded, as [name, value] pairs in order. */
function headersOf(raw: string): [string, string][] {
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

function headerValues(raw: string, name: string): string[] {
  return headersOf(raw)
    .filter(([n]) => n.toLowerCase() === name.toLowerCase())
    .map(([, v]) => v);
}

/** Decodes RFC 2047 encoded words (B and Q, UTF-8), joining adjacent ones. */
function decodeWords(value: string): string {
  return value
    .replace(/(\?=)\s+(=\?)/g, "$1$2")
    .replace(/=\?utf-8\?([BQ])\?([^?]*)\?=/gi, (_, enc: string, text: string) =>
      enc.toUpperCase() === "B"
        ? Buffer.from(text, "base64").toString("utf8")
        : Buffer.from(text.replace(/_/g, " ").replace(/=([0-9A-F]{2})/gi, (__, h: string) => String.fromCharCode(parseInt(h, 16))), "latin1").toString("utf8"),
    );
}

describe("mail a tenant's settings shape", () => {
  it("a legacy send to a branded French business: French copy, its sender, Reply-To and logo", async () => {
    const id = freshBusinessId();
    const put = await rest("PUT", `/admin/v1/businesses/${id}`, {
      body: {
        name: "Dupont & Fils",
        branding: {
          sender_name: "Boulangerie Dupont",
          sender_address: "bonjour@dupont.example.com",
          reply_to: "aide@dupont.example.com",
          default_locale: "fr",
          logo_url: "https://dupont.example.com/logo.png",
          accent_color: "#c0392b",
          support_url: "https://dupont.example.com/aide",
        },
      },
    });
    expect(put.status, put.text).toBe(200);
    const customer = freshEmail("marie");
    expect((await rest("POST", "/admin/v1/users", { body: { business_id: id, email: customer } })).status).toBe(200);

    await legacySend(customer, id);
    const mail = await mailTo(customer);
    const code = codeIn(mail);
    expect(mail.subject).toBe(`Votre code Dupont & Fils : ${code}`);
    expect(mail.text).toContain("Utilisez ce code pour vous connecter à Dupont & Fils :");
    expect(mail.text).toContain("Le code expire dans 10 minutes.");
    expect(mail.text).toContain("Besoin d'aide ? https://dupont.example.com/aide");
    expect(mail.text).not.toMatch(/expires in/);
    expect(mail.html).toContain(`<html lang="fr">`);
    expect(mail.html).toContain(`<img src="https://dupont.example.com/logo.png" alt="Dupont &amp; Fils"`);
    expect(mail.html).toContain("#c0392b");
    expect(mail.html).toContain(code);

    expect(headerValues(mail.raw, "From")).toEqual(["Boulangerie Dupont <bonjour@dupont.example.com>"]);
    expect(headerValues(mail.raw, "Reply-To")).toEqual(["aide@dupont.example.com"]);
    expect(headerValues(mail.raw, "To")).toEqual([customer]);
  });

  describe("a project's custom templates on POST /v1/otps/email/login_or_create", () => {
    let projectId: string;
    let auth: string;
    let signup: Json;
    let login: Json;
    const NAME = `Acme <Labs> & "Co"`;

    beforeAll(async () => {
      const created = await restDriver.call("createProject", { name: NAME });
      projectId = created.project.project_id;
      auth = basic(projectId, created.secret);
      signup = (
        await restDriver.call("setTemplate", {
          project_id: projectId,
          kind: "signup",
          name: "welcome",
          subject: "[{{tenant_name}}] sign-up code {{code}}",
          text_body: "Hello {{email}}, your sign-up code is {{code}}, valid {{expires_in_minutes}} min.",
          html_body: `<h1>{{tenant_name}}</h1><p class="code">{{code}}</p><p>{{email}}</p>`,
        })
      ).template;
      login = (
        await restDriver.call("setTemplate", {
          project_id: projectId,
          kind: "login",
          name: "returning",
          subject: "{{tenant_name}} login {{code}}",
          text_body: "Back again? {{code}}",
          html_body: `<div id="login">{{code}}</div>`,
        })
      ).template;
    });

    it("signup_template_id: a new address gets the custom sign-up mail, values escaped in HTML only", async () => {
      const email = freshEmail("custom");
      const res = await loginOrCreate(auth, {
        email,
        expiration_minutes: 4,
        signup_template_id: signup.template_id,
        login_template_id: login.template_id,
      });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body.user_created).toBe(true);
      const mail = await mailTo(email);
      const code = codeIn(mail);
      expect(mail.subject).toBe(`[${NAME}] sign-up code ${code}`);
      expect(mail.text.trim()).toBe(`Hello ${email}, your sign-up code is ${code}, valid 4 min.`);
      expect(mail.html).toContain(`<h1>Acme &lt;Labs&gt; &amp; &quot;Co&quot;</h1><p class="code">${code}</p><p>${email}</p>`);
      expect(mail.html).not.toContain("<Labs>");
      expect(mail.text).not.toContain("Welcome to");
      expect(mail.html).not.toContain("Back again");

      // Once the address is verified, the same call picks the login template.
      const verified = await stytch("/v1/otps/authenticate", auth, { method_id: res.body.email_id, code });
      expect(verified.status, JSON.stringify(verified.body)).toBe(200);
      const again = await loginOrCreate(auth, { email, signup_template_id: signup.template_id, login_template_id: login.template_id });
      expect(again.status).toBe(200);
      const second = await mailTo(email, 2);
      expect(second.subject).toBe(`${NAME} login ${codeIn(second)}`);
      expect(second.text.trim()).toBe(`Back again? ${codeIn(second)}`);
      expect(second.html).toContain(`<div id="login">${codeIn(second)}</div>`);
    });

    it("without template ids: the built-in copy", async () => {
      const email = freshEmail("builtin");
      expect((await loginOrCreate(auth, { email })).status).toBe(200);
      const mail = await mailTo(email);
      expect(mail.subject).toBe(`Your ${NAME} code: ${codeIn(mail)}`);
    });

    it("signup_template_id and login_template_id may name the template by its name, as the README's walkthrough does", async () => {
      const email = freshEmail("byname");
      const res = await loginOrCreate(auth, { email, expiration_minutes: 4, signup_template_id: "welcome", login_template_id: "returning" });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      const mail = await mailTo(email);
      expect(mail.subject).toBe(`[${NAME}] sign-up code ${codeIn(mail)}`);
    });

    it.each([
      ["login_template_id", "a sign-up template", () => `names a signup template, not a login one: "${signup.template_id}"; its login templates are ${login.template_id} ("returning")`],
      ["signup_template_id", "a login template", () => `names a login template, not a signup one: "${login.template_id}"; its signup templates are ${signup.template_id} ("welcome")`],
      ["signup_template_id", "an unknown id", () => `names no signup template of this project by id or name: "template-000000000000000000000000"; its signup templates are ${signup.template_id} ("welcome")`],
      ["signup_template_id", "an unknown name", () => `names no signup template of this project by id or name: "welcom"; its signup templates are ${signup.template_id} ("welcome")`],
      ["login_template_id", "another project's template", () => `names no login template of this project by id or name: "%ID%"; its login templates are ${login.template_id} ("returning")`],
    ] as const)("%s naming %s: 400 bad_request naming the field and the ids that exist, nothing stored", async (field, what, description) => {
      let templateId: string;
      if (what === "a sign-up template") templateId = signup.template_id;
      else if (what === "a login template") templateId = login.template_id;
      else if (what === "an unknown id") templateId = "template-000000000000000000000000";
      else if (what === "an unknown name") templateId = "welcom";
      else {
        const other = await restDriver.call("setTemplate", {
          project_id: env.project.projectId,
          kind: "login",
          name: "foreign",
          subject: "s",
          text_body: "{{code}}",
          html_body: "{{code}}",
        });
        templateId = other.template.template_id;
      }
      const email = freshEmail("badtemplate");
      const res = await loginOrCreate(auth, { email, [field]: templateId });
      expect(res.status).toBe(400);
      expect(res.body.error_type).toBe("bad_request");
      expect(res.body.error_message).toBe(`${field} ${description().replace("%ID%", templateId)}`);
      // Refused before anything was stored: the address has no user.
      const addresses = (await restDriver.call("listUsers", { project_id: projectId })).users.flatMap((u: Json) => u.emails);
      expect(addresses).not.toContain(email);
    });

    it("locale de on a Stytch send: 400 naming the allowed locales", async () => {
      const res = await loginOrCreate(auth, { email: freshEmail("german"), locale: "de" });
      expect(res.status).toBe(400);
      expect(res.body.error_type).toBe("bad_request");
      expect(res.body.error_message).toBe("locale must be one of: en, es, pt-br, fr");
    });

    it("locale es on a Stytch send: the Spanish copy", async () => {
      const email = freshEmail("spanish");
      expect((await loginOrCreate(auth, { email, locale: "es", expiration_minutes: 3 })).status).toBe(200);
      const mail = await mailTo(email);
      expect(mail.subject).toBe(`Tu código de ${NAME}: ${codeIn(mail)}`);
      expect(mail.text).toContain("El código caduca en 3 minutos.");
    });
  });

  describe("header injection through tenant names", () => {
    function expectSafeHeaders(mail: ReceivedMail, recipient: string): void {
      const headers = headersOf(mail.raw);
      const count = (name: string) => headers.filter(([n]) => n.toLowerCase() === name.toLowerCase()).length;
      expect(count("From")).toBe(1);
      expect(count("Subject")).toBe(1);
      expect(count("To")).toBe(1);
      expect(count("Bcc")).toBe(0);
      expect(count("Cc")).toBe(0);
      expect(headerValues(mail.raw, "To")).toEqual([recipient]);
      // The envelope too: the mail went to the customer alone.
      expect(mail.to).toBe(recipient);
      // Headers are 7-bit: anything else is in encoded words.
      const section = mail.raw.slice(0, mail.raw.search(/\r?\n\r?\n/));
      expect(section).toMatch(/^[\x20-\x7e\r\n\t]*$/);
    }

    it("a non-ASCII business name arrives as RFC 2047 encoded words in From and Subject", async () => {
      const id = freshBusinessId();
      const name = "Café Ünïcode";
      const put = await rest("PUT", `/admin/v1/businesses/${id}`, { body: { name } });
      expect(put.status, put.text).toBe(200);
      const customer = freshEmail("unicode");
      expect((await rest("POST", "/admin/v1/users", { body: { business_id: id, email: customer } })).status).toBe(200);
      await legacySend(customer, id);
      const mail = await mailTo(customer);
      expectSafeHeaders(mail, customer);
      const [from] = headerValues(mail.raw, "From");
      const [subject] = headerValues(mail.raw, "Subject");
      expect(from).toMatch(/=\?utf-8\?[BQ]\?/i);
      expect(subject).toMatch(/=\?utf-8\?[BQ]\?/i);
      expect(decodeWords(from!)).toBe(`${name} <no-reply@otp.localhost>`);
      expect(decodeWords(subject!)).toBe(`Your ${name} code: ${codeIn(mail)}`);
      expect(mail.subject).toBe(`Your ${name} code: ${codeIn(mail)}`);
    });

    it("a CR/LF name already in the database (not through the API) still gives one From, one Subject, no Bcc", async () => {
      const id = freshBusinessId();
      await new PgAdminStore(env.app.db).upsertBusiness(String(id), "Café\r\nBcc: evil@x.com", { senderName: "Desk\r\nBcc: evil2@x.com" });
      const customer = freshEmail("crlf");
      await addTestUser(env.app.db, (await env.tenants.business(String(id)))!.id, customer);
      await legacySend(customer, id);
      const mail = await mailTo(customer);
      expectSafeHeaders(mail, customer);
      expect(decodeWords(headerValues(mail.raw, "Subject")[0]!)).not.toMatch(/[\r\n]/);
      expect(mail.subject).toContain("Bcc: evil@x.com");
      expect(env.smtp.mails.some((m) => /evil2?@x\.com/.test(m.to))).toBe(false);
    });
  });
});

describe("business changes reach the next send at once", () => {
  it("a new default locale is used by the very next legacy mail of that business", async () => {
    const id = 880_000 + Math.floor(Math.random() * 10_000);
    const put = (locale: string) =>
      fetch(`${env.url}/admin/v1/businesses/${id}`, {
        method: "PUT",
        headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify({ name: "Locale Studio", branding: { default_locale: locale } }),
      });
    expect((await put("en")).status).toBe(200);
    const customer = `locale-${id}@example.com`;
    const added = await fetch(`${env.url}/admin/v1/users`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ business_id: id, email: customer }),
    });
    expect(added.status).toBe(200);
    const send = () => fetch(`${env.url}/api/sys/users/sendOtp?email=${encodeURIComponent(customer)}&businessId=${id}`);
    const mailsTo = () => env.smtp.mails.filter((m) => m.to === customer);
    expect((await send()).status).toBe(200);
    await expect.poll(() => mailsTo().length).toBe(1);
    expect(mailsTo()[0]!.subject).toMatch(/^Your Locale Studio code/);
    expect((await put("fr")).status).toBe(200);
    expect((await send()).status).toBe(200);
    await expect.poll(() => mailsTo().length).toBe(2);
    expect(mailsTo()[1]!.subject).toMatch(/^Votre code Locale Studio/);
  });
});
