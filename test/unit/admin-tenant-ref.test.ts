// Which tenant an admin call is about. The schema's `tenant` oneof keeps a
// caller from naming both; the Admin use case's module refuses none.
import { describe, expect, it } from "vitest";
import { requiredTenantRef } from "../../src/domain/admin.js";
import type { DomainError } from "../../src/domain/errors.js";
import { tenantOf } from "../../src/transport/handlers/admin/messages.js";

function refusal(fn: () => unknown): DomainError {
  try {
    fn();
  } catch (err) {
    return err as DomainError;
  }
  throw new Error("not refused");
}

describe("requiredTenantRef", () => {
  it("a project or a business", () => {
    expect(requiredTenantRef({ projectId: "project-1" })).toEqual({ projectId: "project-1" });
    expect(requiredTenantRef({ businessId: "42" })).toEqual({ businessId: "42" });
  });

  it("neither: invalid_argument naming project_id", () => {
    const err = refusal(() => requiredTenantRef(undefined));
    expect(err.reason).toBe("invalid_argument");
    expect(err.details.violations).toEqual([{ field: "project_id", description: "or business_id is required" }]);
  });
});

describe("tenantOf (the request's oneof as the domain's reference)", () => {
  it("the member that is set", () => {
    expect(tenantOf({ case: "projectId", value: "project-1" })).toEqual({ projectId: "project-1" });
    expect(tenantOf({ case: "businessId", value: 42n })).toEqual({ businessId: "42" });
  });

  it("unset, or set to an empty project_id: none, which the use case refuses", () => {
    expect(tenantOf({ case: undefined })).toBeUndefined();
    expect(tenantOf({ case: "projectId", value: "" })).toBeUndefined();
  });
});
