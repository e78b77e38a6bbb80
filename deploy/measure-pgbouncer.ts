// Sends per second through PgBouncer (transaction pooling) against straight
// to Postgres: one service process (node dist/server/server.mjs, as in
// production) per mode on a fresh database, Stytch REST login_or_create
// with a fresh address per request (autocannon, HTTP/1.1), mail delivered to
// a discarding SMTP sink. Modes alternate, each run ROUNDS times; medians printed.
// Not a test (a timed test would be flaky on a shared machine): run it by
// hand after `npm run build`:
//
//   npx tsx deploy/measure-pgbouncer.ts [seconds per run, default 10] [connections, default 8] [rounds, default 3]
//
// Few connections by default: the service refuses (429) sends it could not
// deliver in time, and a saturated service measures that admission, not
// the database path. Refusals are counted and printed; sends/s counts
// accepted sends only.
//
// DATABASE_SERVER_URL (default postgres://postgres@127.0.0.1:5432/postgres)
// names a Postgres server where databases may be created and dropped.
import { spawn } from "node:child_process";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import autocannon from "autocannon";
import pg from "pg";
import { SMTPServer } from "smtp-server";
import { hashSecret } from "../src/domain/password-hash.js";
import { newId } from "../src/domain/ids.js";
import { createPool } from "../src/storage/db.js";
import { migrate } from "../src/storage/migrate.js";
import { PgAdminStore } from "../src/storage/admin-store.js";
import { startPgBouncer } from "../test/deploy/pgbouncer-process.js";

const SECONDS = Number(process.argv[2] ?? 10);
const CONNECTIONS = Number(process.argv[3] ?? 8);
const ROUNDS = Number(process.argv[4] ?? 3);
const SERVER_URL = process.env.DATABASE_SERVER_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const PEPPER = "measure-pepper-0123456789abcdef0123456789abcdef";

async function main(): Promise<void> {
  const name = `otp_measure_${Date.now()}`;
  const admin = new pg.Client({ connectionString: SERVER_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const dbUrl = new URL(SERVER_URL);
  dbUrl.pathname = `/${name}`;
  const db = createPool(dbUrl.toString(), 2);
  await migrate(db);
  const projectId = newId("project", false);
  const secret = `secret-test-${newId("request-id", false)}`;
  await new PgAdminStore(db).createProject({ projectId, name: "Measure", secretHash: await hashSecret(secret), live: false, branding: {} });
  await db.end();

  const sink = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS", "AUTH"],
    logger: false,
    onData(stream, _session, callback) {
      stream.on("data", () => {});
      stream.on("end", () => callback());
    },
  });
  await new Promise<void>((resolve) => sink.listen(0, "127.0.0.1", resolve));
  const smtpUrl = `smtp://127.0.0.1:${(sink.server.address() as AddressInfo).port}`;
  // PgBouncer's default pool (20 server connections) for the service's default pool (20 clients).
  const bouncer = await startPgBouncer(SERVER_URL, { poolSize: 20 });

  const results: Record<string, number[]> = { direct: [], pgbouncer: [] };
  try {
    for (let round = 0; round < ROUNDS; round++) {
      for (const mode of ["direct", "pgbouncer"] as const) {
        const url = mode === "direct" ? dbUrl.toString() : bouncer.through(dbUrl.toString());
        results[mode]!.push(await measure(mode, url, smtpUrl, projectId, secret));
        console.log(`${mode}: ${results[mode]!.at(-1)!.toFixed(0)} sends/s`);
      }
    }
  } finally {
    await bouncer.stop();
    sink.close(() => {});
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const direct = median(results.direct!);
  const bounced = median(results.pgbouncer!);
  const { loadavg } = await import("node:os");
  console.log(
    JSON.stringify({
      seconds: SECONDS,
      connections: CONNECTIONS,
      direct: Math.round(direct),
      pgbouncer: Math.round(bounced),
      ratio: Number((bounced / direct).toFixed(3)),
      runs: Object.fromEntries(Object.entries(results).map(([k, v]) => [k, v.map(Math.round)])),
      loadavg_after: loadavg().map((l) => Number(l.toFixed(2))),
    }),
  );
}

async function measure(label: string, databaseUrl: string, smtpUrl: string, projectId: string, secret: string): Promise<number> {
  const port = await freePort();
  const child = spawn(process.execPath, ["dist/server/server.mjs"], {
    env: {
      PATH: process.env.PATH,
      DATABASE_URL: databaseUrl,
      OTP_PEPPER: PEPPER,
      SMTP_URL: smtpUrl,
      PORT: String(port),
      LOG_LEVEL: "warn",
      RATE_LIMIT_EMAIL_BURST: "1000000",
      RATE_LIMIT_IP_BURST: "1000000",
      RATE_LIMIT_IP_PERIOD_MS: "1",
      RATE_LIMIT_TENANT_BURST: "1000000",
      RATE_LIMIT_TENANT_PERIOD_MS: "1",
    },
    stdio: ["ignore", "ignore", "inherit"],
  });
  const exited = once(child, "exit");
  const base = `http://127.0.0.1:${port}`;
  try {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const ok = await fetch(`${base}/readyz`).then((r) => r.ok, () => false);
      if (ok) break;
      if (child.exitCode !== null || Date.now() > deadline) throw new Error("the service did not become ready");
      await new Promise((r) => setTimeout(r, 100));
    }
    let n = 0;
    const run = (duration: number) =>
      autocannon({
        url: base,
        connections: CONNECTIONS,
        duration,
        requests: [
          {
            method: "POST",
            path: "/v1/otps/email/login_or_create",
            headers: {
              "content-type": "application/json",
              authorization: `Basic ${Buffer.from(`${projectId}:${secret}`).toString("base64")}`,
            },
            setupRequest: (req) => ({ ...req, body: JSON.stringify({ email: `m-${process.pid}-${Date.now()}-${n++}@example.com` }) }),
          },
        ],
      }) as unknown as Promise<{ "2xx": number; non2xx: number; errors: number; duration: number }>;
    await run(2); // warm-up
    const result = await run(SECONDS);
    // Accepted sends only: the service refuses (429) what it cannot deliver in time.
    if (result.non2xx > 0 || result.errors > 0) console.log(`  (${label}: ${result.non2xx} refused, ${result.errors} errors)`);
    return result["2xx"] / result.duration;
  } finally {
    child.kill("SIGTERM");
    await exited;
  }
}

async function freePort(): Promise<number> {
  const net = await import("node:net");
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
