// Which tenant an admin call is about: exactly one of project_id and
// business_id, decided in the Admin use case's module, not in handlers.
import { describe, expect, it } from "vitest";
import { requiredTenantRef, tenantRef } from "../../src/domain/admin.js";
import type { DomainError } from "../../src/domain/errors.js";

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
    expect(requiredTenantRef("project-1", 0n)).toEqual({ projectId: "project-1" });
    expect(requiredTenantRef("", 42n)).toEqual({ businessId: "42" });
  });

  it("neither: invalid_argument naming project_id", () => {
    const err = refusal(() => requiredTenantRef("", 0n));
    expect(err.reason).toBe("invalid_argument");
    expect(err.details.violations).toEqual([{ field: "project_id", description: "or business_id is required" }]);
  });

  it("both: invalid_argument, whether or not one is required", () => {
    expect(refusal(() => requiredTenantRef("project-1", 42n)).message).toBe("project_id and business_id may not both be given");
    expect(refusal(() => tenantRef("project-1", 42n)).reason).toBe("invalid_argument");
  });

  it("tenantRef gives neither as undefined: the Admin use case refuses it when it looks the tenant up", () => {
    expect(tenantRef("", 0n)).toBeUndefined();
  });
});
