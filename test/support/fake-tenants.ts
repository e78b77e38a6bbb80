// Tenants for unit tests of the use cases: no database row behind them.
import type { Tenant } from "../../src/domain/tenants.js";

/** A test project (internal id 41). */
export const unitProject: Tenant = {
  id: "41",
  kind: "project",
  externalId: "project-test-1",
  name: "Acme",
  live: false,
  mailFromName: null,
  mailFromAddress: null,
  defaultLocale: "en",
};
