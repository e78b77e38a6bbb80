// AdminService's project RPCs, over REST (/admin/v1/…, Authorization:
// Bearer) and over the Connect protocol: create, list, update, and rotate a
// project's secret with and without a grace period. Each test makes its own
// project. Real Postgres, real SMTP.
import { beforeAll, describe, expect, it } from "vitest";
import type { Json } from "../support/answers.js";
import {
  basic,
  connectDriver,
  env,
  expectFailure,
  expectRecent,
  failure,
  freshEmail,
  freshName,
  loginOrCreate,
  NO_BRANDING,
  PROJECT_ID,
  restDriver,
  SECRET,
  useAdminTestEnv,
} from "../support/admin-api.js";

useAdminTestEnv();

describe.each([restDriver, connectDriver])("AdminService projects over $name", (api) => {
  const branding = {
    logo_url: `https://cdn.example.com/${api.name}/logo.png`,
    accent_color: "#0a7d5a",
    support_url: "https://help.example.com/otp",
  };
  /** A new project with `branding`, and its secret. */
  const createProject = async (tag: string): Promise<{ project: Json; secret: string }> => {
    const res = await api.call("createProject", { name: freshName(`${tag} ${api.name}`), branding });
    return { project: res.project, secret: res.secret };
  };

  it("CreateProject: a project with its branding, and a secret that authenticates Stytch sends", async () => {
    const name = freshName(`Studio ${api.name}`);
    const res = await api.call("createProject", { name, branding });
    expect(Object.keys(res).sort()).toEqual(["project", "secret"]);
    expect(res.project).toEqual({
      project_id: expect.stringMatching(PROJECT_ID),
      name,
      live: false,
      branding: { ...NO_BRANDING, ...branding },
      created_at: expect.any(String),
    });
    expectRecent(res.project.created_at);
    expect(res.secret).toMatch(SECRET);

    const sent = await loginOrCreate(basic(res.project.project_id, res.secret), { email: freshEmail("create") });
    expect(sent.status, JSON.stringify(sent.body)).toBe(200);
    expect(sent.body.user_created).toBe(true);
    const wrong = await loginOrCreate(basic(res.project.project_id, `${res.secret}x`), { email: freshEmail("create") });
    expect(wrong.status).toBe(401);
  });

  it("ListProjects: every project, oldest first, with branding", async () => {
    const { project } = await createProject("Listed");
    const res = await api.call("listProjects");
    const ids = res.projects.map((p: Json) => p.project_id);
    expect(ids).toContain(env().project.projectId);
    expect(ids.indexOf(env().project.projectId)).toBeLessThan(ids.indexOf(project.project_id));
    expect(res.projects.find((p: Json) => p.project_id === project.project_id)).toEqual(project);
  });

  it("UpdateProject: renames and rebrands; fields left empty keep their stored values", async () => {
    const { project } = await createProject("Studio");
    const res = await api.call("updateProject", {
      project_id: project.project_id,
      name: `${project.name} renamed`,
      branding: { sender_name: "Studio Desk", default_locale: "es" },
    });
    expect(res.project).toEqual({
      ...project,
      name: `${project.name} renamed`,
      branding: { ...project.branding, sender_name: "Studio Desk", default_locale: "es" },
    });
    // Only the name: branding untouched.
    const again = await api.call("updateProject", { project_id: project.project_id, name: `${project.name} again` });
    expect(again.project.branding).toEqual(res.project.branding);
    const listed = (await api.call("listProjects")).projects.find((p: Json) => p.project_id === project.project_id);
    expect(listed).toEqual(again.project);

    const missing = await failure(api.call("updateProject", { project_id: "project-test-00000000-0000-0000-0000-000000000000", name: "x" }));
    expectFailure(api, missing, "not_found", 404, /project_id/);
  });

  it("RotateProjectSecret: a new secret; the old one still authenticates during the grace period (60 minutes by default)", async () => {
    const { project, secret } = await createProject("Rotated");
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

    const tooLong = await failure(api.call("rotateProjectSecret", { project_id: project.project_id, grace_minutes: 10_081 }));
    expectFailure(api, tooLong, "invalid_argument", 400, /grace_minutes/);
  });

  it("RotateProjectSecret with grace_minutes 0: the old secret is refused with 401 at once", async () => {
    const created = await api.call("createProject", { name: freshName(`No grace ${api.name}`) });
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
      const created = await api.call("createProject", { name: freshName(`Busy ${api.name}`) });
      id = created.project.project_id;
      oldSecret = created.secret;
      // The secret authenticates a call on this instance just before the rotation.
      const used = await loginOrCreate(basic(id, oldSecret), { email: freshEmail("busy-before") });
      expect(used.status).toBe(200);
      newSecret = (await api.call("rotateProjectSecret", { project_id: id, grace_minutes: 0 })).secret;
    });

    it("an instance that never saw the old secret refuses it", async () => {
      const other = await env().startInstance();
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
});
