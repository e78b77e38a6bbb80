// Identifiers shaped like Stytch's: `<kind>-<test|live>-<uuid>`.
import { randomBytes, randomUUID } from "node:crypto";

export type IdKind = "project" | "user" | "email" | "session" | "request-id";

export function newId(kind: IdKind, live: boolean): string {
  return `${kind}-${live ? "live" : "test"}-${randomUUID()}`;
}

/** A project secret, shaped like Stytch's: 192 random bits after `secret-<test|live>-`. */
export function newSecret(live: boolean): string {
  return `secret-${live ? "live" : "test"}-${randomBytes(24).toString("base64url")}`;
}

const PROJECT_ID = /^project-(test|live)-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function isProjectId(value: string): boolean {
  return PROJECT_ID.test(value);
}
