// Tenants: Stytch-style projects and legacy portal businesses.

export interface Tenant {
  /** Internal id; never shown to callers. */
  readonly id: string;
  readonly kind: "project" | "business";
  /** The id callers use: a project id, or a business's number as text. */
  readonly externalId: string;
  readonly name: string;
  /** Live projects have live ids and no sandbox. */
  readonly live: boolean;
  readonly mailFromName: string | null;
  readonly mailFromAddress: string | null;
  readonly defaultLocale: string;
}

export interface ProjectCredentials {
  readonly tenant: Tenant;
  /** The slow hash of the project secret. */
  readonly secretHash: string;
  /** After a rotation: the previous secret's hash and until when it is accepted. */
  readonly previousSecretHash: string | null;
  readonly previousSecretExpiresAt: number | null;
}

/** Storage port for tenants. */
export interface TenantStore {
  projectCredentials(projectId: string): Promise<ProjectCredentials | undefined>;
  business(businessId: string): Promise<Tenant | undefined>;
}
