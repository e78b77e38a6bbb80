// Sends per second through PgBouncer (transaction pooling) against straight
// to Postgres: one service process (node dist/server/server.mjs, as in
// production) per mode on a fresh database, Stytch REST login_or_create
// with a fresh address per request (autocannon, HTTP/1.1), mail delivered to
// a discarding SMTP sink. Modes alternate, each run twice; medians printed.
// Not a test (a timed test would be flaky on a shared machine): run it by
// hand after `npm run build`:
//
//   npx tsx deploy/measure-pgbouncer.ts [seconds per run, default 10]
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
    for (let round = 0; round < 2; round++) {
      for (const mode of ["direct", "pgbouncer"] as const) {
        const url = mode === "direct" ? dbUrl.toString() : bouncer.through(dbUrl.toString());
        results[mode]!.push(await measure(url, smtpUrl, projectId, secret));
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
  console.log(JSON.stringify({ seconds: SECONDS, direct, pgbouncer: bounced, ratio: Number((bounced / direct).toFixed(3)), runs: results }));
}

async function measure(databaseUrl: string, smtpUrl: string, projectId: string, secret: string): Promise<number> {
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
      RATE_LIMIT_TENANT_BURST: "1000000",
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
        connections: 32,
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
      }) as unknown as Promise<{ requests: { average: number }; non2xx: number; errors: number }>;
    await run(2); // warm-up
    const result = await run(SECONDS);
    if (result.non2xx > 0 || result.errors > 0) throw new Error(`${result.non2xx} non-2xx answers, ${result.errors} errors`);
    return result.requests.average;
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
