// The admin API's tenant is a `oneof tenant` of project_id and business_id,
// required: naming neither is refused as it always was, and naming both,
// which JSON can express, is refused naming project_id instead of one of
// them quietly winning. Real Postgres, real SMTP.
import { describe, expect, it } from "vitest";
import { adminClient, connectDriver, env, expectFailure, failure, rest, restDriver, TOKEN, useAdminTestEnv, type Rpc } from "../support/admin-api.js";

useAdminTestEnv();

const TENANT_RPCS: [Rpc, Record<string, unknown>][] = [
  ["rotateSigningKeys", {}],
  ["setTemplate", { kind: "TEMPLATE_KIND_LOGIN", name: "T", subject: "S", text_body: "{{code}}", html_body: "<p>{{code}}</p>" }],
  ["listTemplates", {}],
  ["addUser", { email: "someone@example.com" }],
  ["listUsers", {}],
  ["listAuditEvents", {}],
];

describe.each([restDriver, connectDriver])("the tenant oneof over $name", (api) => {
  it.each(TENANT_RPCS)("%s with neither project_id nor business_id: invalid_argument, as before", async (rpc, rest_) => {
    const err = await failure(api.call(rpc, rest_));
    expectFailure(api, err, "invalid_argument", 400, /^project_id or business_id is required$/);
  });

  it("an empty project_id names no tenant either", async () => {
    const err = await failure(api.call("listUsers", { project_id: "" }));
    expectFailure(api, err, "invalid_argument", 400, /^project_id or business_id is required$/);
  });
});

describe("both project_id and business_id", () => {
  const BOTH = "project_id and business_id may not both be given";

  it.each([
    ["proto names", { project_id: "project-x", business_id: "1" }],
    ["JSON names", { projectId: "project-x", businessId: 1 }],
    ["one of each", { businessId: 1, project_id: "project-x" }],
  ])("REST body with %s: 400 naming project_id", async (_, body) => {
    const res = await rest("POST", "/admin/v1/signing_keys/rotate", { body });
    expect(res.status, res.text).toBe(400);
    expect(res.body).toEqual({ code: "invalid_argument", message: BOTH });
  });

  it("REST query parameters: 400 naming project_id", async () => {
    const res = await rest("GET", "/admin/v1/users?business_id=1&project_id=project-x");
    expect(res.status, res.text).toBe(400);
    expect(res.body).toEqual({ code: "invalid_argument", message: BOTH });
  });

  // Connect's JSON decoder refuses it before any interceptor, in its own words.
  it("Connect JSON: InvalidArgument naming both fields", async () => {
    const res = await fetch(`${env().url}/otp.v1.AdminService/ListTemplates`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ projectId: "project-x", businessId: "1" }),
    });
    const text = await res.text();
    expect(res.status, text).toBe(400);
    expect(JSON.parse(text)).toEqual({
      code: "invalid_argument",
      message: "cannot decode oneof otp.v1.ListTemplatesRequest.tenant from JSON: oneof set multiple times by project_id and business_id",
    });
  });

  it("the typed client cannot express both: the oneof holds one member", async () => {
    const err = await adminClient(TOKEN)
      .listUsers({ tenant: { case: "businessId", value: 999_999_999n } })
      .then(
        () => undefined,
        (e: unknown) => e as Error,
      );
    expect(err?.message).toMatch(/business_id names no business/);
  });
});
