// State kept in the data directory in embedded mode: the generated pepper
// and the demo credentials, both created on first start and reused after.
import { randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";

async function readOrCreate(file: string, create: () => Promise<string>): Promise<string> {
  try {
    return await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  const content = await create();
  await mkdir(path.dirname(file), { recursive: true });
  // Owner-only: these are secrets.
  await writeFile(file, content, { mode: 0o600, flag: "wx" });
  return content;
}

export async function loadOrCreatePepper(dataDir: string): Promise<string> {
  const text = await readOrCreate(path.join(dataDir, "pepper"), async () => randomBytes(32).toString("hex"));
  return text.trim();
}

export interface DemoCredentials {
  readonly project_id: string;
  readonly secret: string;
  readonly business_id: number;
  /** Embedded mode only: the generated admin API token. */
  readonly admin_token?: string;
}

export function demoCredentialsPath(dataDir: string): string {
  return path.join(dataDir, "dev-credentials.json");
}

export async function readDemoCredentials(dataDir: string): Promise<DemoCredentials | undefined> {
  try {
    return JSON.parse(await readFile(demoCredentialsPath(dataDir), "utf8")) as DemoCredentials;
  } catch {
    return undefined;
  }
}

export async function writeDemoCredentials(dataDir: string, credentials: DemoCredentials): Promise<void> {
  const previous = await readDemoCredentials(dataDir);
  const merged = previous?.admin_token ? { ...credentials, admin_token: previous.admin_token } : credentials;
  await mkdir(dataDir, { recursive: true });
  await writeFile(demoCredentialsPath(dataDir), `${JSON.stringify(merged, null, 2)}\n`, { mode: 0o600 });
}

/** Embedded mode: the admin token kept in dev-credentials.json, created on first need. */
export async function loadOrCreateAdminToken(dataDir: string): Promise<string> {
  // No file yet (or an unreadable one): start a new one.
  const current: Partial<DemoCredentials> = (await readDemoCredentials(dataDir)) ?? {};
  if (typeof current.admin_token === "string" && current.admin_token.length >= 16) return current.admin_token;
  const token = `admin-${randomBytes(24).toString("base64url")}`;
  await mkdir(dataDir, { recursive: true });
  await writeFile(demoCredentialsPath(dataDir), `${JSON.stringify({ ...current, admin_token: token }, null, 2)}\n`, { mode: 0o600 });
  return token;
}

/** Embedded mode: the embedded Postgres's password, random, kept owner-only in DATA_DIR. */
export async function loadOrCreateEmbeddedPassword(dataDir: string): Promise<string> {
  const text = await readOrCreate(path.join(dataDir, "postgres-password"), async () => randomBytes(24).toString("hex"));
  return text.trim();
}
