// One service per data directory: an embedded Postgres cannot be shared, so a
// second process on the same DATA_DIR is refused at once, naming the process
// that holds it. The lock is a file holding the holder's pid, created
// exclusively; a lock left by a process that no longer runs is taken over.
import { readFileSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";

export class DataDirInUse extends Error {
  override name = "DataDirInUse";
  constructor(
    readonly dataDir: string,
    readonly pid: number,
  ) {
    super(
      `DATA_DIR ${dataDir} is in use by another otp-service (pid ${pid}): stop that one (kill ${pid}), or give this one its own directory with DATA_DIR=…`,
    );
  }
}

export interface DataDirLock {
  release(): Promise<void>;
}

/** True when a process with this pid exists (whoever owns it). */
export function processRuns(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, it is just not ours to signal.
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The command line of a running process, where /proc tells it. */
export function commandLineOf(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ").trim();
  } catch {
    return undefined;
  }
}

/** A reused pid of some unrelated program does not hold the lock. */
function looksLikeNode(pid: number): boolean {
  const command = commandLineOf(pid);
  return command === undefined || /node|otp/i.test(command);
}

export function lockFilePath(dataDir: string): string {
  return path.join(dataDir, "otp-service.pid");
}

export async function lockDataDir(dataDir: string): Promise<DataDirLock> {
  await mkdir(dataDir, { recursive: true });
  const file = lockFilePath(dataDir);
  for (let attempt = 0; ; attempt++) {
    try {
      await writeFile(file, `${process.pid}\n`, { flag: "wx", mode: 0o644 });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST" || attempt > 0) throw err;
    }
    const holder = Number.parseInt(await readFile(file, "utf8").catch(() => ""), 10);
    if (holder !== process.pid && processRuns(holder) && looksLikeNode(holder)) throw new DataDirInUse(dataDir, holder);
    // Left by a process that is gone (killed, crashed): take it over.
    await rm(file, { force: true });
  }
  return {
    async release() {
      const holder = Number.parseInt(await readFile(file, "utf8").catch(() => ""), 10);
      if (holder === process.pid) await rm(file, { force: true });
    },
  };
}
