// The admin CLI (src/cli/admin.ts) driving the real server over the Connect
// API: tables, --json, temp template files, and its exit codes (0 ok,
// 2 usage, 3 denied, 4 not found, 5 unavailable); plus one run as a real
// child process through `npx tsx`. Real Postgres, real SMTP.
import { execFile } from "node:child_process";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../../src/cli/admin.js";
import { startTestEnv, type TestEnv } from "../support/app.js";
import { type Json, mailbox } from "../support/answers.js";

const TOKEN = "admin-cli-test-token-0123456789abcdef";
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

let env: TestEnv;
let tmp: string;
beforeAll(async () => {
  env = await startTestEnv({ ADMIN_TOKEN: TOKEN });
  tmp = await mkdtemp(path.join(os.tmpdir(), "otp-admin-cli-"));
});
afterAll(async () => {
  await env?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

const RUN = Date.now().toString(36);
let counter = 0;
const freshEmail = (tag: string) => `${tag}-${++counter}-${RUN}@example.com`;
let nextBusiness = 40_000 + Math.floor(Math.random() * 10_000) * 10;

interface Run {
  readonly code: number;
  readonly out: string;
  readonly err: string;
}

async function cli(args: string[], extraEnv: Record<string, string | undefined> = {}): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(args, { OTP_URL: env.url, ADMIN_TOKEN: TOKEN, DATA_DIR: tmp, ...extraEnv }, {
    out: (t) => out.push(t),
    err: (t) => err.push(t),
  });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

/** Runs a command that must succeed; returns its standard output. */
async function ok(args: string[]): Promise<string> {
  const r = await cli(args);
  expect(r.code, `${args.join(" ")}\n${r.err}`).toBe(0);
  expect(r.err).toBe("");
  return r.out;
}

async function json(args: string[]): Promise<Json> {
  return JSON.parse(await ok([...args, "--json"]));
}

/** A table's rows as arrays of cells (split on runs of 2+ spaces), header first. */
function rows(table: string): string[][] {
  return table
    .split("\n")
    .filter((l) => l.trim() !== "" && !/^The |^Deleted|^Removed/.test(l))
    .map((l) => l.trim().split(/ {2,}/));
}

describe("commands against the real server", () => {
  // Each test makes through the CLI the project, business or customer it reads.
  const newProject = async (name = `CLI Co ${RUN} ${++counter}`): Promise<{ projectId: string; name: string }> => {
    const body = await json(["project", "create", "--name", name, "--accent-color", "#0a7d5a"]);
    return { projectId: body.project.project_id, name };
  };
  const newBusiness = async (): Promise<string> => {
    const id = String(++nextBusiness);
    await json(["business", "upsert", "--id", id, "--name", "CLI Yoga"]);
    return id;
  };
  const newCustomer = async (business: string): Promise<{ email: string; userId: string; emailId: string }> => {
    const email = freshEmail("cli-customer");
    const body = await json(["customer", "add", "--business", business, "--email", email]);
    return { email, userId: body.user_id, emailId: body.email_id };
  };

  it("project create: prints a table with the new project and its secret, once", async () => {
    const out = await ok(["project", "create", "--name", `CLI Co ${RUN}`, "--accent-color", "#0a7d5a"]);
    const [header, row, ...more] = rows(out);
    expect(header).toEqual(["PROJECT_ID", "NAME", "SECRET"]);
    expect(more).toEqual([]);
    expect(row![0]).toMatch(/^project-test-[0-9a-f-]{36}$/);
    expect(row![1]).toBe(`CLI Co ${RUN}`);
    expect(row![2]).toMatch(/^secret-test-[A-Za-z0-9_-]{32}$/);
    expect(out).toContain("The secret is shown only now");
    const [projectId, , secret] = row as [string, string, string];

    // The printed secret works.
    const res = await fetch(`${env.url}/v1/otps/email/login_or_create`, {
      method: "POST",
      headers: { authorization: `Basic ${Buffer.from(`${projectId}:${secret}`).toString("base64")}`, "content-type": "application/json" },
      body: JSON.stringify({ email: freshEmail("cli-project") }),
    });
    expect(res.status).toBe(200);
  });

  it("project create --json: the whole response as JSON", async () => {
    const body = await json(["project", "create", "--name", `CLI Json ${RUN}`, "--locale", "es"]);
    expect(body.project).toMatchObject({ name: `CLI Json ${RUN}`, live: false, branding: { default_locale: "es" } });
    expect(body.secret).toMatch(/^secret-test-/);
  });

  it("project list: a table with the project; --json parses", async () => {
    const { projectId, name } = await newProject();
    const table = rows(await ok(["project", "list"]));
    expect(table[0]).toEqual(["PROJECT_ID", "NAME", "LIVE"]);
    expect(table).toContainEqual([projectId, name, "false"]);
    expect(table).toContainEqual([env.project.projectId, "Acme", "false"]);
    const body = await json(["project", "list"]);
    const ours = body.projects.find((p: { project_id: string }) => p.project_id === projectId);
    expect(ours).toMatchObject({ name, branding: { accent_color: "#0a7d5a" } });
  });

  it("business upsert: creates a branded business, shown by business list", async () => {
    const BUSINESS = ++nextBusiness;
    const out = await ok([
      "business", "upsert", "--id", String(BUSINESS), "--name", "CLI Yoga",
      "--sender-name", "CLI Desk", "--sender-address", "desk@cli-yoga.example.com",
      "--reply-to", "help@cli-yoga.example.com", "--logo-url", "https://cli-yoga.example.com/logo.png",
      "--support-url", "https://cli-yoga.example.com/help", "--locale", "pt-br",
    ]);
    expect(rows(out)).toEqual([["BUSINESS_ID", "NAME", "CREATED"], [String(BUSINESS), "CLI Yoga", "true"]]);
    const again = await json(["business", "upsert", "--id", String(BUSINESS), "--name", "CLI Yoga"]);
    expect(again.created).toBe(false);
    expect(again.business.branding).toEqual({
      sender_name: "CLI Desk",
      sender_address: "desk@cli-yoga.example.com",
      reply_to: "help@cli-yoga.example.com",
      logo_url: "https://cli-yoga.example.com/logo.png",
      accent_color: "",
      support_url: "https://cli-yoga.example.com/help",
      default_locale: "pt-br",
    });
    const list = rows(await ok(["business", "list"]));
    expect(list[0]).toEqual(["BUSINESS_ID", "NAME", "LOCALE"]);
    expect(list).toContainEqual([String(BUSINESS), "CLI Yoga", "pt-br"]);
  });

  it("customer add / list: the customer with its email", async () => {
    const BUSINESS = await newBusiness();
    const customer = freshEmail("cli-customer");
    const added = rows(await ok(["customer", "add", "--business", String(BUSINESS), "--email", customer]));
    expect(added[0]).toEqual(["USER_ID", "EMAIL_ID", "CREATED"]);
    expect(added[1]![0]).toMatch(/^user-test-/);
    expect(added[1]![1]).toMatch(/^email-test-/);
    expect(added[1]![2]).toBe("true");

    const list = rows(await ok(["customer", "list", "--business", String(BUSINESS)]));
    expect(list).toEqual([["USER_ID", "STATUS", "EMAILS"], [added[1]![0]!, "active", customer]]);
    const body = await json(["customer", "list", "--business", String(BUSINESS)]);
    expect(body.users).toEqual([{ user_id: added[1]![0], status: "USER_STATUS_ACTIVE", emails: [customer], created_at: expect.any(String) }]);
  });

  it("template set --file / template list", async () => {
    const { projectId } = await newProject();
    const file = path.join(tmp, "welcome.json");
    await writeFile(
      file,
      JSON.stringify({
        subject: "Welcome to {{tenant_name}}",
        text_body: "Your code is {{code}}. It expires in {{expires_in_minutes}} minutes.",
        html_body: "<p>Your code is <b>{{code}}</b>.</p>",
      }),
    );
    const set = rows(await ok(["template", "set", "--project", projectId, "--kind", "signup", "--name", "welcome", "--file", file]));
    expect(set[0]).toEqual(["TEMPLATE_ID", "KIND", "NAME"]);
    expect(set[1]![0]).toMatch(/^template-[0-9a-f]{24}$/);
    expect(set[1]!.slice(1)).toEqual(["signup", "welcome"]);
    const list = rows(await ok(["template", "list", "--project", projectId]));
    expect(list).toEqual([["TEMPLATE_ID", "KIND", "NAME", "SUBJECT"], [set[1]![0]!, "signup", "welcome", "Welcome to {{tenant_name}}"]]);
    const body = await json(["template", "list", "--project", projectId]);
    expect(body.templates[0]).toMatchObject({
      template_id: set[1]![0],
      text_body: "Your code is {{code}}. It expires in {{expires_in_minutes}} minutes.",
      html_body: "<p>Your code is <b>{{code}}</b>.</p>",
    });
  });

  it("template set with a template the server refuses: exit 2 naming the field, nothing stored", async () => {
    const { projectId } = await newProject();
    const file = path.join(tmp, "broken.json");
    await writeFile(file, JSON.stringify({ subject: "Hi", text_body: "no code", html_body: "<p>{{code}}</p>" }));
    const r = await cli(["template", "set", "--project", projectId, "--kind", "login", "--name", "broken", "--file", file]);
    expect(r.code).toBe(2);
    expect(r.err).toContain("text_body must contain {{code}}");
    expect((await json(["template", "list", "--project", projectId])).templates).toEqual([]);
  });

  it("template set with a missing or non-JSON file: exit 2", async () => {
    const { projectId } = await newProject();
    const missing = await cli(["template", "set", "--project", projectId, "--kind", "login", "--name", "x", "--file", path.join(tmp, "nope.json")]);
    expect(missing.code).toBe(2);
    expect(missing.err).toContain("--file");
    const notJson = path.join(tmp, "not.json");
    await writeFile(notJson, "subject: hi");
    const bad = await cli(["template", "set", "--project", projectId, "--kind", "login", "--name", "x", "--file", notJson]);
    expect(bad.code).toBe(2);
  });

  it("audit: the legacy send to the customer", async () => {
    const BUSINESS = await newBusiness();
    const { email: customer, emailId: customerEmailId } = await newCustomer(BUSINESS);
    const res = await fetch(`${env.url}/api/sys/users/sendOtp?email=${encodeURIComponent(customer)}&businessId=${BUSINESS}`);
    expect(res.status).toBe(200);
    await mailbox(() => env.smtp).waitForMailTo(customer, 1);
    const table = rows(await ok(["audit", "--business", String(BUSINESS)]));
    expect(table[0]).toEqual(["AT", "ACTION", "OUTCOME", "REASON", "EMAIL_ID", "IP"]);
    expect(table).toHaveLength(2);
    // The empty REASON column collapses into the separator.
    expect(table[1]).toEqual([expect.stringMatching(/^\d{4}-\d\d-\d\dT/), "send", "ok", customerEmailId, "127.0.0.1"]);
    const body = await json(["audit", "--business", String(BUSINESS), "--limit", "5"]);
    expect(body.events).toHaveLength(1);
    expect(body.events[0]).toMatchObject({ action: "AUDIT_ACTION_SEND", outcome: "ok", email_id: customerEmailId });
    const future = await json(["audit", "--business", String(BUSINESS), "--since", new Date(Date.now() + 60_000).toISOString()]);
    expect(future.events).toEqual([]);
  });

  it("delivery: the mail shows as sent", async () => {
    const BUSINESS = await newBusiness();
    const { email: customer, emailId: customerEmailId } = await newCustomer(BUSINESS);
    const sent = await fetch(`${env.url}/api/sys/users/sendOtp?email=${encodeURIComponent(customer)}&businessId=${BUSINESS}`);
    expect(sent.status).toBe(200);
    let body: { deliveries: { status: string; message_id: string; attempts: number }[] } = { deliveries: [] };
    for (let i = 0; i < 100 && body.deliveries[0]?.status !== "DELIVERY_STATUS_SENT"; i++) {
      if (i > 0) await new Promise((resolve) => setTimeout(resolve, 50));
      body = await json(["delivery", "--email-id", customerEmailId]);
    }
    const mail = await mailbox(() => env.smtp).waitForMailTo(customer, 1);
    expect(body.deliveries).toEqual([expect.objectContaining({ status: "DELIVERY_STATUS_SENT", message_id: mail.messageId, attempts: 1 })]);
    const table = rows(await ok(["delivery", "--email-id", customerEmailId]));
    expect(table[0]).toEqual(["MESSAGE_ID", "STATUS", "ATTEMPTS", "LAST_ERROR", "SENT_AT"]);
    expect(table[1]!.slice(0, 3)).toEqual([mail.messageId, "sent", "1"]);
  });

  it("user remove: removes the customer (then an unknown id)", async () => {
    const BUSINESS = await newBusiness();
    const { userId } = await newCustomer(BUSINESS);
    expect(await ok(["customer", "remove", "--id", userId])).toContain("Removed.");
    expect((await json(["customer", "list", "--business", String(BUSINESS)])).users).toEqual([]);
    const again = await cli(["user", "remove", "--id", userId]);
    expect(again.code).toBe(4);
    expect(again.err).toContain("user_id names no user");
  });
});

describe("exit codes", () => {
  it("0 for --help, with the usage on standard output", async () => {
    const r = await cli(["--help"]);
    expect(r.code).toBe(0);
    expect(r.out).toContain("usage: npm run admin");
  });

  it("3 for a wrong token", async () => {
    const r = await cli(["project", "list"], { ADMIN_TOKEN: "wrong-token-0123456789" });
    expect(r.code).toBe(3);
    expect(r.out).toBe("");
    expect(r.err).toMatch(/admin token/);
  });

  it("3 for no token at all (and no embedded credentials in DATA_DIR)", async () => {
    const r = await cli(["project", "list"], { ADMIN_TOKEN: undefined });
    expect(r.code).toBe(3);
    expect(r.err).toContain("no admin token");
  });

  it("4 for an unknown id on user remove", async () => {
    const r = await cli(["user", "remove", "--id", "user-test-00000000-0000-0000-0000-000000000000"]);
    expect(r.code).toBe(4);
    expect(r.err).toContain("user_id");
  });

  it("4 for an unknown project on project update", async () => {
    const r = await cli(["project", "update", "--id", "project-test-00000000-0000-0000-0000-000000000000", "--name", "x"]);
    expect(r.code).toBe(4);
  });

  it.each([
    [["frobnicate"]],
    [["project", "frobnicate"]],
    [["project"]],
    [[]],
    [["project", "list", "--bogus"]],
  ])("2 for a bad command %j", async (args) => {
    const r = await cli(args);
    expect(r.code).toBe(2);
    expect(r.out).toBe("");
    expect(r.err.length).toBeGreaterThan(0);
  });

  it.each([
    [["project", "create"], "--name"],
    [["business", "upsert", "--id", "5"], "--name"],
    [["customer", "add", "--business", "5"], "--email"],
    [["customer", "list"], "--business"],
    [["template", "list"], "--project or --business"],
    [["delivery"], "--email-id"],
    [["user", "remove"], "--id"],
  ])("2 for a missing required flag: %j", async (args, flag) => {
    const r = await cli(args);
    expect(r.code).toBe(2);
    expect(r.err).toContain(flag);
  });

  it("2 for input the server refuses (an accent colour that is not one)", async () => {
    const r = await cli(["project", "create", "--name", "Bad colour", "--accent-color", "red"]);
    expect(r.code).toBe(2);
    expect(r.err).toContain("branding.accent_color");
  });

  it("4 for delivery of an email id that does not exist, with a message (not an empty table and 0)", async () => {
    const r = await cli(["delivery", "--email-id", "email-test-00000000-0000-0000-0000-000000000000"]);
    expect(r.code).toBe(4);
    expect(r.out).toBe("");
    expect(r.err).toBe("error: email_id names no email address");
  });

  it("5 when OTP_URL is unreachable, saying so and naming OTP_URL", async () => {
    const r = await cli(["project", "list"], { OTP_URL: "http://127.0.0.1:1" });
    expect(r.code).toBe(5);
    expect(r.out).toBe("");
    expect(r.err).toBe("error: cannot reach otp-service at http://127.0.0.1:1 (ECONNREFUSED): is it running? Check that OTP_URL points to where the service listens");
    const unset = await cli(["project", "list"], { OTP_URL: undefined });
    if (unset.code === 5) {
      expect(unset.err).toBe(
        "error: cannot reach otp-service at http://127.0.0.1:8080 (ECONNREFUSED): is it running? OTP_URL is not set, so the default was tried: set OTP_URL to where the service listens",
      );
    }
  });

  it("2, sending nothing, for plain http:// to a host that is not loopback; OTP_ALLOW_HTTP=1 allows it", async () => {
    // 0.0.0.0 reaches this machine but is not a loopback name: it stands for
    // any remote host here, where a test may only talk to loopback.
    const seen: (string | undefined)[] = [];
    const listener = http.createServer((req, res) => {
      seen.push(req.headers.authorization);
      res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => listener.listen(0, "0.0.0.0", resolve));
    const { port } = listener.address() as AddressInfo;
    try {
      const refused = await cli(["project", "list"], { OTP_URL: `http://0.0.0.0:${port}` });
      expect(refused.code).toBe(2);
      expect(refused.err).toContain("OTP_URL is plain http:// to 0.0.0.0, which is not this machine");
      expect(refused.err).toContain("OTP_ALLOW_HTTP=1");
      expect(seen).toEqual([]);

      const allowed = await cli(["project", "list"], { OTP_URL: `http://0.0.0.0:${port}`, OTP_ALLOW_HTTP: "1" });
      expect(allowed.code).not.toBe(0);
      expect(seen).toEqual([`Bearer ${TOKEN}`]);
    } finally {
      await new Promise((resolve) => listener.close(resolve));
    }
    // Loopback names need no opt-in.
    const local = await cli(["project", "list"], { OTP_URL: env.url.replace("127.0.0.1", "localhost") });
    expect(local.code, local.err).toBe(0);
  });

  it("2 for an OTP_URL that is not an http(s) URL", async () => {
    const r = await cli(["project", "list"], { OTP_URL: "ftp://127.0.0.1" });
    expect(r.code).toBe(2);
    expect(r.err).toContain("OTP_URL");
  });
});

describe("as a real child process", () => {
  function npxTsx(args: string[], extraEnv: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      execFile(
        "npx",
        ["tsx", "src/cli/admin.ts", ...args],
        { cwd: ROOT, env: { ...process.env, DATA_DIR: tmp, ...extraEnv }, timeout: 20_000 },
        (error, stdout, stderr) => resolve({ code: error ? (error.code as number | null) ?? null : 0, stdout, stderr }),
      );
    });
  }

  it("`npx tsx src/cli/admin.ts project list` exits 0 and prints the table; a wrong token exits 3", async () => {
    const [good, denied] = await Promise.all([
      npxTsx(["project", "list"], { OTP_URL: env.url, ADMIN_TOKEN: TOKEN }),
      npxTsx(["project", "list"], { OTP_URL: env.url, ADMIN_TOKEN: "wrong-token-0123456789" }),
    ]);
    expect(good.code, good.stderr).toBe(0);
    const table = rows(good.stdout);
    expect(table[0]).toEqual(["PROJECT_ID", "NAME", "LIVE"]);
    expect(table).toContainEqual([env.project.projectId, "Acme", "false"]);
    expect(denied.code).toBe(3);
    expect(denied.stdout).toBe("");
    expect(denied.stderr).toMatch(/admin token/);
  });
});
