// AdminService's business, template, user, audit and delivery RPCs, over
// REST and over the Connect protocol. Each driver gets its own project and
// business; each test makes the rows it reads. Real Postgres, real SMTP.
import { beforeAll, describe, expect, it } from "vitest";
import type { Json } from "../support/answers.js";
import {
  basic,
  connectDriver,
  EMAIL_ID,
  env,
  expectFailure,
  expectRecent,
  failure,
  freshBusinessId,
  freshEmail,
  freshName,
  legacySend,
  loginOrCreate,
  mailTo,
  restDriver,
  TEMPLATE_ID,
  USER_AGENT,
  USER_ID,
  useAdminTestEnv,
} from "../support/admin-api.js";

useAdminTestEnv();

describe.each([restDriver, connectDriver])("AdminService tenant records over $name", (api) => {
  const businessBranding = {
    sender_name: "Harbour Desk",
    sender_address: "hello@harbour.example.com",
    reply_to: "desk@harbour.example.com",
    logo_url: "https://harbour.example.com/logo.png",
    accent_color: "#ABC",
    support_url: "https://harbour.example.com/help",
    default_locale: "pt-br",
  };
  /** This driver's project (which has sent one mail) and business. */
  let project: Json;
  let businessId: number;

  beforeAll(async () => {
    const created = await api.call("createProject", { name: freshName(`Studio ${api.name}`) });
    project = created.project;
    const sent = await loginOrCreate(basic(project.project_id, created.secret), { email: freshEmail("member") });
    expect(sent.status, JSON.stringify(sent.body)).toBe(200);
    businessId = freshBusinessId();
    await api.call("upsertBusiness", { business_id: businessId, name: freshName(`Harbour ${api.name}`) });
  });

  /** A new customer of this driver's business. */
  const addCustomer = async (tag: string) => {
    const email = freshEmail(tag);
    const added = await api.call("addUser", { business_id: businessId, email });
    return { email, user: added };
  };

  it("UpsertBusiness: creates a business with branding, then updates its name keeping the branding", async () => {
    const id = freshBusinessId();
    const name = freshName(`Harbour ${api.name}`);
    const created = await api.call("upsertBusiness", { business_id: id, name, branding: businessBranding });
    expect(created).toEqual({
      business: { business_id: String(id), name, branding: businessBranding, created_at: expect.any(String) },
      created: true,
    });
    expectRecent(created.business.created_at);

    const updated = await api.call("upsertBusiness", { business_id: id, name: `${name} II` });
    expect(updated).toEqual({ business: { ...created.business, name: `${name} II` }, created: false });

    const rebranded = await api.call("upsertBusiness", { business_id: id, name: `${name} II`, branding: { accent_color: "#123456" } });
    expect(rebranded.business.branding).toEqual({ ...businessBranding, accent_color: "#123456" });
  });

  it("ListBusinesses: every business by number, with branding", async () => {
    const id = freshBusinessId();
    const name = freshName(`Listed ${api.name}`);
    await api.call("upsertBusiness", { business_id: id, name, branding: businessBranding });
    const res = await api.call("listBusinesses");
    const numbers = res.businesses.map((b: Json) => Number(b.business_id));
    expect(numbers).toContain(env().businessId);
    expect(numbers).toContain(id);
    expect([...numbers].sort((a, b) => a - b)).toEqual(numbers);
    const ours = res.businesses.find((b: Json) => Number(b.business_id) === id);
    expect(ours.name).toBe(name);
    expect(ours.branding).toEqual(businessBranding);
  });

  it("SetTemplate / ListTemplates / DeleteTemplate, with malformed templates refused by field", async () => {
    const template = {
      kind: "TEMPLATE_KIND_SIGNUP",
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

    const replaced = await api.call("setTemplate", { project_id: project.project_id, template_id: id, ...template, kind: "TEMPLATE_KIND_LOGIN", name: "returning" });
    expect(replaced.template).toMatchObject({ template_id: id, kind: "TEMPLATE_KIND_LOGIN", name: "returning" });
    const listed = (await api.call("listTemplates", { project_id: project.project_id })).templates;
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({ template_id: id, kind: "TEMPLATE_KIND_LOGIN", name: "returning" });

    const noCode = await failure(api.call("setTemplate", { project_id: project.project_id, ...template, text_body: "no code here" }));
    expectFailure(api, noCode, "invalid_argument", 400, /text_body must contain \{\{code\}\}/);
    const unknown = await failure(api.call("setTemplate", { project_id: project.project_id, ...template, html_body: "<p>{{codex}}</p>" }));
    expectFailure(api, unknown, "invalid_argument", 400, /html_body unknown placeholder \{\{codex\}\}/);
    const open = await failure(api.call("setTemplate", { project_id: project.project_id, ...template, text_body: "{{code}} {{code" }));
    expectFailure(api, open, "invalid_argument", 400, /text_body malformed placeholder/);
    const twoLines = await failure(api.call("setTemplate", { project_id: project.project_id, ...template, subject: "a\nb" }));
    expectFailure(api, twoLines, "invalid_argument", 400, /subject must be a single line/);
    const noKind = await failure(api.call("setTemplate", { project_id: project.project_id, ...template, kind: "TEMPLATE_KIND_UNSPECIFIED" }));
    expectFailure(api, noKind, "invalid_argument", 400, /^kind is required$/);
    const badKind = await failure(api.call("setTemplate", { project_id: project.project_id, ...template, kind: 7 }));
    expectFailure(api, badKind, "invalid_argument", 400, /^kind must be one of: TEMPLATE_KIND_LOGIN, TEMPLATE_KIND_SIGNUP$/);
    if (api.name === "REST") {
      // REST decodes unknown names as unknown fields are (ignored): a word that is no kind leaves none.
      const oldWord = await failure(api.call("setTemplate", { project_id: project.project_id, ...template, kind: "login" }));
      expectFailure(api, oldWord, "invalid_argument", 400, /^kind is required$/);
    }
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

  it("AddUser / ListUsers / RemoveUser: customers of a business, and users of a project", async () => {
    const id = freshBusinessId();
    await api.call("upsertBusiness", { business_id: id, name: freshName(`Users ${api.name}`) });
    const customer = freshEmail("customer");
    const added = await api.call("addUser", { business_id: id, email: customer });
    expect(added).toEqual({ user_id: expect.stringMatching(USER_ID), email_id: expect.stringMatching(EMAIL_ID), created: true });
    const twice = await api.call("addUser", { business_id: id, email: customer.toUpperCase() });
    expect(twice).toEqual({ ...added, created: false });

    const leaving = await api.call("addUser", { business_id: id, email: freshEmail("leaving") });
    const list = (await api.call("listUsers", { business_id: id })).users;
    expect(list.map((u: Json) => u.user_id)).toEqual([leaving.user_id, added.user_id]);
    expect(list[1]).toEqual({ user_id: added.user_id, status: "USER_STATUS_ACTIVE", emails: [customer], created_at: expect.any(String) });
    expect((await api.call("listUsers", { business_id: id, limit: 1 })).users).toHaveLength(1);

    expect(await api.call("removeUser", { user_id: leaving.user_id })).toEqual({});
    expect((await api.call("listUsers", { business_id: id })).users.map((u: Json) => u.user_id)).toEqual([added.user_id]);
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
    const badEmail = await failure(api.call("addUser", { business_id: id, email: "not-an-email" }));
    expectFailure(api, badEmail, "invalid_argument", 400, /email/);
  });

  it("ListAuditEvents: a legacy send to the customer is recorded, newest first, within since/until", async () => {
    const { email: customer, user: customerUser } = await addCustomer("audited");
    const beforeSend = new Date(Date.now() - 1).toISOString();
    await legacySend(customer, businessId);
    await mailTo(customer);
    const events = (await api.call("listAuditEvents", { business_id: businessId })).events;
    expect(events[0]).toEqual({
      occurred_at: expect.any(String),
      action: "AUDIT_ACTION_SEND",
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
    const { email: customer, user: customerUser } = await addCustomer("delivered");
    await legacySend(customer, businessId);
    const mail = await mailTo(customer);
    let deliveries: Json[] = [];
    for (let i = 0; i < 100; i++) {
      deliveries = (await api.call("getDeliveryStatus", { email_id: customerUser.email_id })).deliveries;
      if (deliveries[0]?.status === "DELIVERY_STATUS_SENT") break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(deliveries).toEqual([
      {
        message_id: mail.messageId,
        status: "DELIVERY_STATUS_SENT",
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
