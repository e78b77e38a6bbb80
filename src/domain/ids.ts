// Identifiers shaped like Stytch's: `<kind>-<test|live>-<uuid>`.
import { randomUUID } from "node:crypto";

export type IdKind = "project" | "user" | "email" | "session" | "request-id";

export function newId(kind: IdKind, live: boolean): string {
  return `${kind}-${live ? "live" : "test"}-${randomUUID()}`;
}

const PROJECT_ID = /^project-(test|live)-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function isProjectId(value: string): boolean {
  return PROJECT_ID.test(value);
}
