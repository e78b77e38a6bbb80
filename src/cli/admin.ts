// `npm run admin -- <command>`: the admin API from a terminal. It finds the
// server through OTP_URL and the token through ADMIN_TOKEN (in embedded
// mode, dev-credentials.json in DATA_DIR). Exit codes: 0 done, 1 failed,
// 2 usage, 3 not allowed, 4 not found, 5 server unreachable or unavailable.
import { readFile } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { toJson, type DescMessage, type Message } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { AdminService, AuditAction, type Branding, DeliveryStatus, TemplateKind, UserStatus } from "../../gen/otp/v1/admin_service_pb.js";
import { ConfigError, loadAdminCliConfig } from "../config.js";
import { readDemoCredentials } from "../storage/dev-state.js";

const EXIT = { ok: 0, failed: 1, usage: 2, denied: 3, notFound: 4, unavailable: 5 } as const;

export interface Io {
  out(text: string): void;
  err(text: string): void;
}

const HELP = `usage: npm run admin -- <command> [options] [--json]

  project create --name NAME [--live] [branding]     create a project (prints its secret once)
  project list                                       list projects
  project update --id PROJECT [--name NAME] [branding]
  project rotate-secret --id PROJECT [--grace-minutes N]
  keys rotate (--project ID | --business N) [--revoke-previous]
                                                     a new signing key for one tenant; the previous
                                                     ones stay in its JWKS unless revoked at once
  business upsert --id NUMBER --name NAME [branding] create or update a business
  business list
  template set (--project ID | --business N) --kind login|signup --name NAME --file FILE [--id TEMPLATE]
                                                     FILE is JSON: {"subject", "text_body", "html_body"}
  template list (--project ID | --business N)
  template delete --id TEMPLATE
  user add (--project ID | --business N) --email EMAIL
  user list (--project ID | --business N) [--limit N]
  user remove --id USER
  customer add|list --business N ...                 the same as user, for a business
  customer remove --id USER
  audit (--project ID | --business N) [--since ISO] [--until ISO] [--limit N]
  delivery --email-id EMAIL_ID                       how the mail to an address went

branding: --sender-name --sender-address --reply-to --logo-url --accent-color --support-url --locale
environment: OTP_URL (default http://127.0.0.1:8080), ADMIN_TOKEN (embedded mode: read from
DATA_DIR/dev-credentials.json, DATA_DIR default .data), OTP_ALLOW_HTTP=1 (plain http:// to a
host other than loopback; the token then crosses the network in clear)`;

const OPTIONS = {
  name: { type: "string" },
  id: { type: "string" },
  live: { type: "boolean" },
  project: { type: "string" },
  business: { type: "string" },
  kind: { type: "string" },
  file: { type: "string" },
  email: { type: "string" },
  "email-id": { type: "string" },
  limit: { type: "string" },
  since: { type: "string" },
  until: { type: "string" },
  "grace-minutes": { type: "string" },
  "revoke-previous": { type: "boolean" },
  "sender-name": { type: "string" },
  "sender-address": { type: "string" },
  "reply-to": { type: "string" },
  "logo-url": { type: "string" },
  "accent-color": { type: "string" },
  "support-url": { type: "string" },
  locale: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

class UsageError extends Error {}

type Values = ReturnType<typeof parse>["values"];

function parse(args: string[]) {
  return parseArgs({ args, options: OPTIONS, allowPositionals: true, strict: true });
}

function need(values: Values, key: keyof Values): string {
  const v = values[key];
  if (typeof v !== "string" || v === "") throw new UsageError(`--${key} is required`);
  return v;
}

function int(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new UsageError(`--${flag} must be a whole number`);
  return Number(value);
}

/** `--kind login|signup`: the short words people type, as the schema's TemplateKind. */
function templateKind(word: string): TemplateKind {
  if (word === "login") return TemplateKind.LOGIN;
  if (word === "signup") return TemplateKind.SIGNUP;
  throw new UsageError("--kind must be login or signup");
}

/** An admin enum value as the short word people read: TemplateKind.LOGIN → login, DeliveryStatus.SENT → sent. */
const word = (values: Record<number, string>, value: number) => (values[value] ?? "").toLowerCase();
const kindWord = (kind: TemplateKind) => word(TemplateKind, kind);

type Tenant = { tenant: { case: "projectId"; value: string } | { case: "businessId"; value: bigint } };

function tenant(values: Values): Tenant {
  if (values.project && values.business) throw new UsageError("give --project or --business, not both");
  if (values.project) return { tenant: { case: "projectId", value: values.project } };
  if (values.business) return { tenant: { case: "businessId", value: BigInt(int(values.business, "business")!) } };
  throw new UsageError("--project or --business is required");
}

/** The tenant of a user command: `customer …` always names a business, `user …` either kind. */
function userTenant(cmd: string, values: Values): Tenant {
  return tenant(cmd.startsWith("customer") ? { ...values, business: need(values, "business") } : values);
}

function branding(values: Values): Omit<Branding, "$typeName"> | undefined {
  const given = [values["sender-name"], values["sender-address"], values["reply-to"], values["logo-url"],
    values["accent-color"], values["support-url"], values.locale];
  if (given.every((v) => v === undefined)) return undefined;
  // Flags not given stay empty, which leaves the stored value as it is.
  return {
    senderName: values["sender-name"] ?? "",
    senderAddress: values["sender-address"] ?? "",
    replyTo: values["reply-to"] ?? "",
    logoUrl: values["logo-url"] ?? "",
    accentColor: values["accent-color"] ?? "",
    supportUrl: values["support-url"] ?? "",
    defaultLocale: values.locale ?? "",
  };
}

function date(value: string | undefined, flag: string) {
  if (value === undefined) return undefined;
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) throw new UsageError(`--${flag} must be a date, e.g. 2026-11-21T10:00:00Z`);
  return timestampFromDate(d);
}

/** A result: rows for the table, and the message for --json. */
interface Result {
  readonly schema: DescMessage;
  readonly message: Message;
  readonly rows?: Record<string, string>[];
  readonly note?: string;
}

async function run(client: Client<typeof AdminService>, cmd: string, values: Values): Promise<Result> {
  const S = AdminService.method;
  switch (cmd) {
    case "project create": {
      const r = await client.createProject({ name: need(values, "name"), live: values.live ?? false, branding: branding(values) });
      return { schema: S.createProject.output, message: r, rows: [{ project_id: r.project!.projectId, name: r.project!.name, secret: r.secret }], note: "The secret is shown only now: keep it safe." };
    }
    case "project list": {
      const r = await client.listProjects({});
      return { schema: S.listProjects.output, message: r, rows: r.projects.map((p) => ({ project_id: p.projectId, name: p.name, live: String(p.live) })) };
    }
    case "project update": {
      const r = await client.updateProject({ projectId: need(values, "id"), name: values.name ?? "", branding: branding(values) });
      return { schema: S.updateProject.output, message: r, rows: [{ project_id: r.project!.projectId, name: r.project!.name }] };
    }
    case "project rotate-secret": {
      const r = await client.rotateProjectSecret({ projectId: need(values, "id"), graceMinutes: int(values["grace-minutes"], "grace-minutes") });
      return { schema: S.rotateProjectSecret.output, message: r, rows: [{ secret: r.secret, previous_valid_until: toIso(r.previousValidUntil) }], note: "The new secret is shown only now." };
    }
    case "keys rotate": {
      const r = await client.rotateSigningKeys({ ...tenant(values), revokePrevious: values["revoke-previous"] === true });
      return { schema: S.rotateSigningKeys.output, message: r, rows: r.publishedKids.map((kid, i) => ({ kid, state: i === 0 ? "active" : "retired" })) };
    }
    case "business upsert": {
      const r = await client.upsertBusiness({ businessId: BigInt(int(need(values, "id"), "id")!), name: need(values, "name"), branding: branding(values) });
      return { schema: S.upsertBusiness.output, message: r, rows: [{ business_id: String(r.business!.businessId), name: r.business!.name, created: String(r.created) }] };
    }
    case "business list": {
      const r = await client.listBusinesses({});
      return { schema: S.listBusinesses.output, message: r, rows: r.businesses.map((b) => ({ business_id: String(b.businessId), name: b.name, locale: b.branding?.defaultLocale ?? "" })) };
    }
    case "template set": {
      const file = need(values, "file");
      let parts: { subject?: unknown; text_body?: unknown; html_body?: unknown };
      try {
        parts = JSON.parse(await readFile(path.resolve(file), "utf8"));
      } catch (err) {
        throw new UsageError(`--file ${file}: ${(err as Error).message}`);
      }
      const r = await client.setTemplate({
        ...tenant(values),
        templateId: values.id ?? "",
        kind: templateKind(need(values, "kind")),
        name: need(values, "name"),
        subject: String(parts.subject ?? ""),
        textBody: String(parts.text_body ?? ""),
        htmlBody: String(parts.html_body ?? ""),
      });
      return { schema: S.setTemplate.output, message: r, rows: [{ template_id: r.template!.templateId, kind: kindWord(r.template!.kind), name: r.template!.name }] };
    }
    case "template list": {
      const r = await client.listTemplates(tenant(values));
      return { schema: S.listTemplates.output, message: r, rows: r.templates.map((t) => ({ template_id: t.templateId, kind: kindWord(t.kind), name: t.name, subject: t.subject })) };
    }
    case "template delete": {
      const r = await client.deleteTemplate({ templateId: need(values, "id") });
      return { schema: S.deleteTemplate.output, message: r, note: "Deleted." };
    }
    case "user add":
    case "customer add": {
      const r = await client.addUser({ ...userTenant(cmd, values), email: need(values, "email") });
      return { schema: S.addUser.output, message: r, rows: [{ user_id: r.userId, email_id: r.emailId, created: String(r.created) }] };
    }
    case "user list":
    case "customer list": {
      const r = await client.listUsers({ ...userTenant(cmd, values), limit: int(values.limit, "limit") });
      return { schema: S.listUsers.output, message: r, rows: r.users.map((u) => ({ user_id: u.userId, status: word(UserStatus, u.status), emails: u.emails.join(", ") })) };
    }
    case "user remove":
    case "customer remove": {
      const r = await client.removeUser({ userId: need(values, "id") });
      return { schema: S.removeUser.output, message: r, note: "Removed." };
    }
    case "audit": {
      const r = await client.listAuditEvents({ ...tenant(values), since: date(values.since, "since"), until: date(values.until, "until"), limit: int(values.limit, "limit") });
      return { schema: S.listAuditEvents.output, message: r, rows: r.events.map((e) => ({ at: toIso(e.occurredAt), action: word(AuditAction, e.action), outcome: e.outcome, reason: e.reason, email_id: e.emailId, ip: e.ipAddress })) };
    }
    case "delivery": {
      const r = await client.getDeliveryStatus({ emailId: need(values, "email-id") });
      return { schema: S.getDeliveryStatus.output, message: r, rows: r.deliveries.map((d) => ({ message_id: d.messageId, status: word(DeliveryStatus, d.status), attempts: String(d.attempts), last_error: d.lastError, sent_at: toIso(d.sentAt) })) };
    }
    default:
      throw new UsageError(`unknown command "${cmd}"`);
  }
}

/** The system error code when the server could not be reached at all (refused, no such host…). */
function unreachableCause(e: ConnectError): string | undefined {
  if (e.code !== Code.Unavailable && e.code !== Code.Unknown && e.code !== Code.Internal) return undefined;
  const text = [e.rawMessage, String((e.cause as { code?: unknown } | undefined)?.code ?? ""), String((e.cause as Error | undefined)?.message ?? "")].join(" ");
  return /\b(ECONNREFUSED|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|ECONNRESET|ETIMEDOUT)\b/.exec(text)?.[1];
}

function toIso(t: { seconds: bigint; nanos: number } | undefined): string {
  return t ? new Date(Number(t.seconds) * 1000 + Math.floor(t.nanos / 1e6)).toISOString() : "";
}

/** Columns padded to their widest cell. */
function table(rows: readonly Record<string, string>[]): string {
  if (rows.length === 0) return "(none)";
  const keys = Object.keys(rows[0]!);
  const widths = keys.map((k) => Math.max(k.length, ...rows.map((r) => (r[k] ?? "").length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd();
  return [line(keys.map((k) => k.toUpperCase())), ...rows.map((r) => line(keys.map((k) => r[k] ?? "")))].join("\n");
}

async function adminToken(configured: string | undefined, dataDir: string): Promise<string | undefined> {
  return configured || (await readDemoCredentials(dataDir))?.admin_token;
}

export async function main(argv: string[], env: Record<string, string | undefined>, io: Io): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (err) {
    io.err(`${(err as Error).message}\n\n${HELP}`);
    return EXIT.usage;
  }
  const { values, positionals } = parsed;
  if (values.help || positionals.length === 0) {
    (values.help ? io.out : io.err)(HELP);
    return values.help ? EXIT.ok : EXIT.usage;
  }
  const cmd = positionals.slice(0, ["audit", "delivery"].includes(positionals[0]!) ? 1 : 2).join(" ");
  let url = env.OTP_URL || "http://127.0.0.1:8080";
  try {
    const config = loadAdminCliConfig(env);
    url = config.url;
    const token = await adminToken(config.token, config.dataDir);
    if (!token) {
      io.err("no admin token: set ADMIN_TOKEN (or run next to an embedded server's DATA_DIR)");
      return EXIT.denied;
    }
    const client = createClient(
      AdminService,
      createConnectTransport({
        baseUrl: config.url,
        httpVersion: "1.1",
        interceptors: [
          (next) => (req) => {
            req.header.set("authorization", `Bearer ${token}`);
            return next(req);
          },
        ],
      }),
    );
    const result = await run(client, cmd, values);
    if (values.json) {
      io.out(JSON.stringify(toJson(result.schema, result.message, { useProtoFieldName: true, alwaysEmitImplicit: true }), null, 2));
    } else {
      if (result.rows) io.out(table(result.rows));
      if (result.note) io.out(result.note);
    }
    return EXIT.ok;
  } catch (err) {
    if (err instanceof UsageError || err instanceof ConfigError) {
      io.err(`${err.message}\n\nrun with --help for usage`);
      return EXIT.usage;
    }
    const e = ConnectError.from(err);
    const unreachable = unreachableCause(e);
    if (unreachable) {
      io.err(
        `error: cannot reach otp-service at ${url} (${unreachable}): is it running? ${env.OTP_URL ? "Check that OTP_URL points" : "OTP_URL is not set, so the default was tried: set OTP_URL"} to where the service listens`,
      );
      return EXIT.unavailable;
    }
    io.err(`error: ${e.rawMessage}`);
    switch (e.code) {
      case Code.Unauthenticated:
      case Code.PermissionDenied:
        return EXIT.denied;
      case Code.NotFound:
        return EXIT.notFound;
      case Code.Unavailable:
      case Code.DeadlineExceeded:
        return EXIT.unavailable;
      case Code.InvalidArgument:
        return EXIT.usage;
      default:
        return EXIT.failed;
    }
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2), process.env, { out: (t) => console.log(t), err: (t) => console.error(t) }).then((code) => {
    process.exitCode = code;
  });
}
