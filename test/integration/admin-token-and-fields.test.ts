// The admin API's gate and field rules: the bearer token (REST and Connect),
// the API being off without ADMIN_TOKEN, and branding and names refused by
// field with nothing stored. Real Postgres, real SMTP.
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import type { Json } from "../support/answers.js";
import { adminClient, env, freshBusinessId, freshName, rest, restDriver, TOKEN, useAdminTestEnv } from "../support/admin-api.js";

useAdminTestEnv();

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
    const post = await rest("POST", "/admin/v1/projects", { token, body: { name: freshName("Sneaky") } });
    expect(post.status).toBe(401);
    expect(post.body.code).toBe("unauthenticated");
  });

  it("a project's Basic credentials are not an admin token", async () => {
    const res = await fetch(`${env().url}/admin/v1/projects`, { headers: { authorization: env().project.authorization } });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ code: "unauthenticated" });
  });

  it("nothing is created by refused calls", async () => {
    const name = freshName("Sneaky");
    for (const token of [null, `${TOKEN}x`, TOKEN.slice(0, 16), ""]) {
      expect((await rest("POST", "/admin/v1/projects", { token, body: { name } })).status).toBe(401);
    }
    const names = (await restDriver.call("listProjects")).projects.map((p: Json) => p.name);
    expect(names).not.toContain(name);
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
    const off = await env().startInstance({ ADMIN_TOKEN: "" });
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
    const name = freshName(`Bad ${field}`);
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
