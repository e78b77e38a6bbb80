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
  await mkdir(dataDir, { recursive: true });
  await writeFile(demoCredentialsPath(dataDir), `${JSON.stringify(credentials, null, 2)}\n`, { mode: 0o600 });
}
