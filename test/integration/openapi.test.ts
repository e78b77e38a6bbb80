// The OpenAPI document: valid OpenAPI 3.1 by a standard validator, current
// with proto/ (what `npm run generate` writes), one operation for each REST
// route the server serves and no other, served at /openapi.json, and
// rendered at /docs from files of this origin only. (Every REST answer of
// the integration tests is validated against it by test/support/answers.ts.)
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import SwaggerParser from "@apidevtools/swagger-parser";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateOpenApi } from "../../src/cli/openapi.js";
import { answer } from "../support/answers.js";
import { startTestEnv, type TestEnv } from "../support/app.js";
import { checkRestAnswer } from "../support/openapi.js";

const DOC = new URL("../../docs/openapi.json", import.meta.url);

let env: TestEnv;
let committed: string;
beforeAll(async () => {
  env = await startTestEnv();
  committed = await readFile(DOC, "utf8");
});
afterAll(async () => {
  await env?.close();
});

describe("docs/openapi.json", () => {
  it("is a valid OpenAPI 3.1 document (swagger-parser)", async () => {
    const api = (await SwaggerParser.validate(JSON.parse(committed))) as { openapi: string };
    expect(api.openapi).toBe("3.1.0");
  });

  it("is what npm run generate makes from proto/ now", () => {
    expect(generateOpenApi()).toBe(committed);
  });

  it("has exactly one operation per REST route the server serves, with its contract's security", () => {
    const doc = JSON.parse(committed) as { paths: Record<string, Record<string, { security: unknown[]; operationId: string }>> };
    const documented = Object.entries(doc.paths).flatMap(([p, ops]) => Object.entries(ops).map(([verb, op]) => `${verb.toUpperCase()} ${p} → ${op.operationId.replace("_", ".")}`));
    expect(documented.sort()).toEqual([...env.app.restRoutes].sort());
    expect(doc.paths["/v1/otps/email/send"]!.post!.security).toEqual([{ stytchBasic: [] }]);
    expect(doc.paths["/admin/v1/projects"]!.post!.security).toEqual([{ adminBearer: [] }]);
    expect(doc.paths["/api/sys/users/sendOtp"]!.get!.security).toEqual([]);
  });

  it("documents the legacy route's query, envelope, 400 and 429 as they are answered", async () => {
    const doc = JSON.parse(committed);
    const op = doc.paths["/api/sys/users/sendOtp"].get;
    expect(op.parameters.map((p: { name: string }) => p.name)).toEqual(["email", "businessId"]);
    expect(op.responses["400"].$ref).toBe("#/components/responses/LegacyError400");
    expect(op.responses["429"].$ref).toBe("#/components/responses/LegacyError429");
    const ok = await answer(await fetch(`${env.url}/api/sys/users/sendOtp?email=${encodeURIComponent(env.customer)}&businessId=${env.businessId}`));
    expect(ok.status).toBe(200);
    const bad = await answer(await fetch(`${env.url}/api/sys/users/sendOtp?businessId=${env.businessId}`));
    expect(bad.status).toBe(400);
  });

  it("catches an answer that does not match (the check can fail)", () => {
    const url = `${env.url}/v1/otps/email/send`;
    expect(() => checkRestAnswer(url, 200, { request_id: "x" }, "{}")).toThrow(/does not match/);
    expect(() => checkRestAnswer(url, 401, { error: "nope" }, "{}")).toThrow(/does not match/);
    expect(() => checkRestAnswer(`${env.url}/api/sys/users/sendOtp`, 429, { WasSuccessful: true, Value: null, Status: 429, Message: "x", Errors: null }, "{}")).toThrow();
    expect(checkRestAnswer(`${env.url}/otp.v1.OtpService/SendEmailOtp`, 200, {}, "{}")).toBe(false);
  });
});

describe("served", () => {
  it("GET /openapi.json is the committed document", async () => {
    const res = await fetch(`${env.url}/openapi.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(await res.json()).toEqual(JSON.parse(committed));
  });

  it("GET /docs is a page that loads only this origin's files, under a same-origin CSP", async () => {
    const res = await fetch(`${env.url}/docs`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-security-policy")).toMatch(/default-src 'self'/);
    const html = await res.text();
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
    for (const asset of [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!)) {
      const a = await fetch(`${env.url}${asset}`);
      expect(a.status, asset).toBe(200);
      expect((await a.text()).length, asset).toBeGreaterThan(10);
    }
    // Read on first use and kept: asked again, the same bytes as swagger-ui-dist's file.
    const again = await fetch(`${env.url}/docs/swagger-ui-bundle.js`);
    const file = await readFile(createRequire(import.meta.url).resolve("swagger-ui-dist/swagger-ui-bundle.js"));
    expect(Buffer.from(await again.arrayBuffer()).equals(file)).toBe(true);
  });
});
