// The append-only audit trail: every send and check with its outcome,
// legacy ones included, and never the code. Real Postgres, real SMTP.
import { describe, expect, it } from "vitest";
import { sleep } from "../support/answers.js";
import {
  addCustomer,
  authenticate,
  env,
  exchange,
  expectLegacyOtpError,
  freshEmail,
  legacySend,
  sendCode,
  useSignInEnv,
  wrongCode,
} from "../support/sign-in.js";

useSignInEnv();

interface AuditRow {
  tenant_id: string;
  action: string;
  user_id: string | null;
  email_id: string | null;
  ip_address: string | null;
  user_agent: string | null;
  outcome: string;
}

async function auditRows(where: string, params: unknown[], atLeast: number): Promise<AuditRow[]> {
  const deadline = Date.now() + 3_000;
  for (;;) {
    const { rows } = await env().app.db.query<AuditRow>(
      `SELECT tenant_id::text AS tenant_id, action, user_id, email_id, ip_address, user_agent, outcome
       FROM audit_events WHERE ${where} ORDER BY occurred_at`,
      params,
    );
    if (rows.length >= atLeast || Date.now() > deadline) return rows;
    await sleep(50);
  }
}

/** Every audit row as text, its timestamp cut out (its microseconds could look like a code). */
async function auditText(): Promise<string[]> {
  const { rows } = await env().app.db.query<{ row: string; at: string }>(
    "SELECT t::text AS row, t.occurred_at::text AS at FROM audit_events t",
  );
  return rows.map((r) => r.row.replace(r.at, ""));
}

function expectNoCode(rows: readonly string[], codes: readonly string[]): void {
  for (const code of codes) {
    const pattern = new RegExp(`(?<![0-9a-f])${code}(?![0-9a-f])`);
    for (const row of rows) expect(row, `code ${code} in an audit row`).not.toMatch(pattern);
  }
}

describe("audit_events", () => {
  it("records every send and authenticate with its outcome, and never the code", async () => {
    const tenant = (await env().tenants.projectCredentials(env().project.projectId))!.tenant;
    const attributes = { ip_address: "192.0.2.10", user_agent: "UA-audit" };
    const sent = await sendCode(freshEmail("audit"), { attributes });
    const wrong = wrongCode(sent.code);
    expect((await authenticate({ method_id: sent.emailId, code: wrong, attributes })).status).toBe(404);
    expect((await authenticate({ method_id: sent.emailId, code: sent.code, attributes })).status).toBe(200);

    const rows = await auditRows("email_id = $1", [sent.emailId], 3);
    expect(rows.map((r) => r.action)).toEqual(["send", "authenticate", "authenticate"]);
    expect(rows[0]!.outcome).toBe("ok");
    expect(rows[1]!.outcome).not.toBe("ok");
    expect(rows[1]!.outcome.length).toBeGreaterThan(0);
    expect(rows[2]!.outcome).toBe("ok");
    for (const row of rows) {
      expect(row.tenant_id).toBe(tenant.id);
      expect(row.user_id).toBe(sent.userId);
      expect(row.ip_address).toBe(attributes.ip_address);
      expect(row.user_agent).toBe(attributes.user_agent);
    }

    expectNoCode(await auditText(), [sent.code, wrong]);
  });

  it("records legacy sends and exchanges, failed ones (unknown email too) included, never the code", async () => {
    const business = (await env().tenants.business(String(env().businessId)))!;
    const customer = await addCustomer("audit-legacy");
    const code = await legacySend(customer);
    const wrong = wrongCode(code);
    expectLegacyOtpError(await exchange({ email: customer, businessId: env().businessId, otp: wrong }));
    expect((await exchange({ email: customer, businessId: env().businessId, otp: code })).status).toBe(200);

    const { rows: ids } = await env().app.db.query<{ id: string }>(
      "SELECT id FROM emails WHERE tenant_id = $1 AND address = $2",
      [business.id, customer],
    );
    expect(ids).toHaveLength(1);
    const rows = await auditRows("email_id = $1", [ids[0]!.id], 3);
    expect(rows.map((r) => [r.action, r.outcome === "ok"])).toEqual([
      ["send", true],
      ["exchange", false],
      ["exchange", true],
    ]);
    for (const row of rows) expect(row.tenant_id).toBe(business.id);

    // An exchange for an address no customer has is recorded as a failure.
    const countExchanges = async () =>
      Number(
        (
          await env().app.db.query<{ n: string }>(
            "SELECT count(*) AS n FROM audit_events WHERE tenant_id = $1 AND action = 'exchange' AND outcome <> 'ok'",
            [business.id],
          )
        ).rows[0]!.n,
      );
    const before = await countExchanges();
    expectLegacyOtpError(await exchange({ email: freshEmail("audit-stranger"), businessId: env().businessId, otp: code }));
    const deadline = Date.now() + 3_000;
    while ((await countExchanges()) === before && Date.now() < deadline) await sleep(50);
    expect(await countExchanges()).toBe(before + 1);

    expectNoCode(await auditText(), [code, wrong]);
  });

  it("is append-only: updating or deleting a row fails", async () => {
    const sent = await sendCode(freshEmail("append-only"));
    const rows = await auditRows("email_id = $1", [sent.emailId], 1);
    expect(rows).toHaveLength(1);
    await expect(
      env().app.db.query("UPDATE audit_events SET outcome = 'tampered' WHERE email_id = $1", [sent.emailId]),
    ).rejects.toThrow();
    await expect(env().app.db.query("DELETE FROM audit_events WHERE email_id = $1", [sent.emailId])).rejects.toThrow();
    expect(await auditRows("email_id = $1", [sent.emailId], 1)).toEqual(rows);
  });
});
