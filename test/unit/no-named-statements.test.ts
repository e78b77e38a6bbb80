// PgBouncer in transaction pooling mode (Debian's 1.18) does not carry a
// named prepared statement from one server connection to the next: a query
// config with `name:` works directly against Postgres and fails at random
// through the pooler ("prepared statement … does not exist"). Every query
// in the service is unnamed; this keeps it so. test/deploy/pgbouncer.test.ts
// runs the service through a real PgBouncer.
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const SRC = fileURLToPath(new URL("../../src/", import.meta.url));
// A pg QueryConfig with a name (`name: …,` right before `text:`, as the code base writes them).
const NAMED_QUERY = /\bname:\s*[^,\n]+,\s*text:/;

async function sourceFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await sourceFiles(p)));
    else if (e.name.endsWith(".ts")) out.push(p);
  }
  return out;
}

describe("SQL statements", () => {
  it("are never named prepared statements", async () => {
    const offenders: string[] = [];
    for (const file of await sourceFiles(SRC)) {
      if (NAMED_QUERY.test(await readFile(file, "utf8"))) offenders.push(path.relative(SRC, file));
    }
    expect(offenders).toEqual([]);
  });

  it("the check recognises a named statement", () => {
    expect(NAMED_QUERY.test(`query(db, {\n  name: "otp_send",\n  text: SEND_SQL,\n  values: [a],\n})`)).toBe(true);
    expect(NAMED_QUERY.test(`query(db, {\n  text: SEND_SQL,\n  values: [a],\n})`)).toBe(false);
  });
});
