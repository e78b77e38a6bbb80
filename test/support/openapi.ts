// Every REST answer the tests see is checked against docs/openapi.json: the
// route is found by its path, the response by its status (or "default"),
// and the body must validate against that response's schema (JSON Schema
// 2020-12, as OpenAPI 3.1 uses). Paths the document does not describe
// (Connect and gRPC calls, /readyz, …) are not checked.
import { readFileSync } from "node:fs";
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";

const DOC_URL = new URL("../../docs/openapi.json", import.meta.url);

interface Operation {
  readonly verb: string;
  readonly responses: Record<string, { $ref?: string; content?: { "application/json"?: { schema?: unknown } } }>;
}

interface PathEntry {
  readonly template: string;
  readonly pattern: RegExp;
  readonly operations: Operation[];
}

let loaded: { doc: Record<string, unknown>; paths: PathEntry[]; ajv: Ajv2020; validators: Map<string, ValidateFunction> } | undefined;

function load() {
  if (loaded) return loaded;
  const doc = JSON.parse(readFileSync(DOC_URL, "utf8")) as { paths: Record<string, Record<string, Operation["responses"] | unknown>> };
  const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true });
  ajv.addSchema(doc, "openapi.json");
  const paths: PathEntry[] = Object.entries(doc.paths).map(([template, ops]) => ({
    template,
    pattern: new RegExp(`^${template.replace(/\{[^}]+\}/g, "[^/]+")}/?$`),
    operations: Object.entries(ops).map(([verb, op]) => ({ verb, responses: (op as { responses: Operation["responses"] }).responses })),
  }));
  loaded = { doc: doc as Record<string, unknown>, paths, ajv, validators: new Map() };
  return loaded;
}

function validatorFor(ref: string): ValidateFunction {
  const l = load();
  let v = l.validators.get(ref);
  if (!v) {
    v = l.ajv.compile({ $ref: `openapi.json${ref}` });
    l.validators.set(ref, v);
  }
  return v;
}

/** The schema $ref of an operation's response for a status, following a shared response. */
function schemaRefOf(op: Operation, status: number): string | undefined {
  let response = op.responses[String(status)] ?? op.responses.default;
  if (response?.$ref) {
    const name = response.$ref.split("/").pop()!;
    response = ((load().doc.components as { responses: Record<string, Operation["responses"][string]> }).responses)[name];
  }
  const schema = response?.content?.["application/json"]?.schema as { $ref?: string } | undefined;
  return schema?.$ref;
}

/**
 * Throws unless the answer matches the document for its path (any
 * operation on that path, since the test's fetch method is not known
 * here). Returns false when the path is not a documented REST route.
 */
export function checkRestAnswer(url: string, status: number, body: unknown, text: string): boolean {
  const pathname = new URL(url).pathname;
  const entry = load().paths.find((p) => p.pattern.test(pathname));
  if (!entry) return false;
  const problems: string[] = [];
  for (const op of entry.operations) {
    const ref = schemaRefOf(op, status);
    if (!ref) {
      problems.push(`${op.verb.toUpperCase()} ${entry.template}: no response documented for ${status}`);
      continue;
    }
    const validate = validatorFor(ref);
    if (body !== undefined && validate(body)) return true;
    problems.push(`${op.verb.toUpperCase()} ${entry.template} ${status} (${ref}): ${body === undefined ? "not JSON" : JSON.stringify(validate.errors)}`);
  }
  throw new Error(`REST answer does not match docs/openapi.json:\n${problems.join("\n")}\nanswer: ${text.slice(0, 500)}`);
}
