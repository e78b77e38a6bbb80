// The operator's use cases and the template directory, through an in-memory
// AdminStore and a fake clock.
import { describe, expect, it } from "vitest";
import { Admin } from "../../src/domain/admin.js";
import { verifySecret } from "../../src/domain/password-hash.js";
import { TemplateDirectory } from "../../src/domain/template-directory.js";
import { FakeAdminStore } from "../support/fake-admin-store.js";
import { FakeClock } from "../support/fake-clock.js";

const TEMPLATE = { kind: "login" as const, name: "Welcome", subject: "Your code", text: "Code: {{code}}", html: "<p>{{code}}</p>" };

function setup() {
  const store = new FakeAdminStore();
  const clock = new FakeClock();
  return { store, clock, admin: new Admin(store, clock), templates: new TemplateDirectory(store, clock, 10_000) };
}

describe("Admin", () => {
  it("creates a project with a fresh id and a secret it keeps only as a hash", async () => {
    const { store, admin } = setup();
    const { project, secret } = await admin.createProject("Acme", false, {});
    expect(project.projectId).toMatch(/^project-test-/);
    expect(secret).toMatch(/^secret-test-/);
    const stored = store.projects.get(project.projectId)!;
    expect(stored.secretHash).not.toContain(secret);
    expect(await verifySecret(secret, stored.secretHash)).toBe(true);
  });

  it("rotates a secret: the previous one stays valid for the grace minutes, by the clock", async () => {
    const { store, clock, admin } = setup();
    const { project, secret: first } = await admin.createProject("Acme", true, {});
    const { secret, previousValidUntil } = await admin.rotateSecret(project.projectId, 15);
    expect(secret).toMatch(/^secret-live-/);
    expect(previousValidUntil).toBe(clock.now() + 15 * 60_000);
    expect(await verifySecret(first, store.projects.get(project.projectId)!.previous!.hash)).toBe(true);
    await expect(admin.rotateSecret("project-test-nope", 1)).rejects.toMatchObject({ reason: "not_found" });
  });

  it("refuses a template without {{code}} or with an unknown placeholder, naming the part", async () => {
    const { admin, store } = setup();
    const { project } = await admin.createProject("Acme", false, {});
    const ref = { projectId: project.projectId };
    const bad = await admin.setTemplate(ref, { ...TEMPLATE, id: undefined, text: "no code {{nope}}" }).catch((e: unknown) => e);
    expect(bad).toMatchObject({ reason: "invalid_argument", details: { violations: [{ field: "text_body" }] } });
    expect(store.templates.size).toBe(0);
    const saved = await admin.setTemplate(ref, { ...TEMPLATE, id: undefined });
    expect(saved.id).toMatch(/^template-[0-9a-f]{24}$/);
  });

  it("needs a tenant that exists, named once", async () => {
    const { admin } = setup();
    await expect(admin.listTemplates(undefined)).rejects.toMatchObject({ reason: "invalid_argument" });
    await expect(admin.listTemplates({ businessId: "9" })).rejects.toMatchObject({ reason: "not_found" });
  });

  it("adds a user once per normalised address", async () => {
    const { admin } = setup();
    await admin.upsertBusiness("7", "Studio", {});
    const first = await admin.addUser({ businessId: "7" }, " Jane@Example.com ");
    const again = await admin.addUser({ businessId: "7" }, "jane@example.com");
    expect(first.created).toBe(true);
    expect(again).toEqual({ ...first, created: false });
  });
});

describe("Admin and this instance's caches", () => {
  it("forgets a changed business, a rotated project and a saved or deleted template, after the store changed", async () => {
    const store = new FakeAdminStore();
    const forgotten: string[] = [];
    const cache = (kind: string) => ({ forget: (id: string) => forgotten.push(`${kind}:${id}`) });
    const admin = new Admin(store, new FakeClock(), { businesses: cache("business"), projects: cache("project"), templates: cache("template") });
    await admin.upsertBusiness("7", "Studio", {});
    const { project } = await admin.createProject("Acme", false, {});
    await admin.rotateSecret(project.projectId, 5);
    const saved = await admin.setTemplate({ projectId: project.projectId }, { ...TEMPLATE, id: undefined });
    await admin.deleteTemplate(saved.id);
    expect(forgotten).toEqual(["business:7", `project:${project.projectId}`, `template:${saved.id}`, `template:${saved.id}`]);
    // A refused change forgets nothing.
    await expect(admin.rotateSecret("project-test-nope", 5)).rejects.toMatchObject({ reason: "not_found" });
    expect(forgotten).toHaveLength(4);
  });
});

describe("TemplateDirectory", () => {
  it("resolves by id or by unique name, and remembers the answer until its TTL passes", async () => {
    const { store, clock, admin, templates } = setup();
    const { project } = await admin.createProject("Acme", false, {});
    const tenantId = store.projects.get(project.projectId)!.tenantId;
    const saved = await admin.setTemplate({ projectId: project.projectId }, { ...TEMPLATE, id: undefined });
    expect(await templates.resolve(tenantId, saved.id, "login")).toBe(saved.id);
    expect(await templates.resolve(tenantId, "Welcome", "login")).toBe(saved.id);
    const lookups = store.lookups;
    expect(await templates.resolve(tenantId, "Welcome", "login")).toBe(saved.id);
    expect(store.lookups).toBe(lookups);
    clock.advance(10_000);
    await templates.resolve(tenantId, "Welcome", "login");
    expect(store.lookups).toBeGreaterThan(lookups);
  });

  it("refuses a template of the other kind or of another tenant, naming the field and the ones that exist", async () => {
    const { store, admin, templates } = setup();
    const a = await admin.createProject("A", false, {});
    const b = await admin.createProject("B", false, {});
    const saved = await admin.setTemplate({ projectId: a.project.projectId }, { ...TEMPLATE, id: undefined });
    const tenantA = store.projects.get(a.project.projectId)!.tenantId;
    const tenantB = store.projects.get(b.project.projectId)!.tenantId;
    const wrongKind = await templates.resolve(tenantA, saved.id, "signup").catch((e: unknown) => e);
    expect(wrongKind).toMatchObject({ reason: "template_not_found", details: { violations: [{ field: "signup_template_id" }] } });
    expect((wrongKind as Error).message).toContain("names a login template, not a signup one");
    await expect(templates.resolve(tenantB, saved.id, "login")).rejects.toMatchObject({ reason: "template_not_found" });
    const missing = await templates.resolve(tenantA, "Nope", "login").catch((e: unknown) => e);
    expect((missing as Error).message).toContain(`its login templates are ${saved.id} ("Welcome")`);
  });

  it("forgets what it remembered when a template changes", async () => {
    const { store, admin, templates } = setup();
    const { project } = await admin.createProject("Acme", false, {});
    const tenantId = store.projects.get(project.projectId)!.tenantId;
    await expect(templates.resolve(tenantId, "Welcome", "login")).rejects.toMatchObject({ reason: "template_not_found" });
    const saved = await admin.setTemplate({ projectId: project.projectId }, { ...TEMPLATE, id: undefined });
    templates.forget(saved.id);
    expect(await templates.resolve(tenantId, "Welcome", "login")).toBe(saved.id);
  });
});
