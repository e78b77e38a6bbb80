// The OpenAPI 3.1 description of every REST route, derived from the same
// google.api.http annotations and otp.v1.contract options the REST router
// serves from, with the proto comments as descriptions: paths, verbs,
// parameters and bodies as the router decodes them, and each contract's
// answers as contracts/shapes.ts writes them (Stytch bodies and errors, the
// legacy ActionConfirmation envelope, the admin API's snake_case bodies and
// Connect-style errors). `npm run generate` writes it to docs/openapi.json;
// the server serves that file at /openapi.json.
import { ScalarType, type DescEnum, type DescField, type DescMessage, type DescMethod, type DescService } from "@bufbuild/protobuf";
import { ruleKeywords } from "./openapi-rules.js";
import { ApiContract, contractOf, httpBindingOf } from "./contract.js";
import { ERROR_MAP } from "./error-mapping.js";

/** The comment above a declaration in the proto, if any. */
export type Describe = (desc: DescService | DescMethod | DescMessage | DescField | DescEnum) => string | undefined;

type Schema = Record<string, unknown>;

/** How a contract spells and fills a JSON body (see contracts/shapes.ts). */
interface Naming {
  /** Suffix of component names, so one message can appear in two spellings. */
  readonly suffix: string;
  readonly key: (f: DescField) => string;
  /** Top-level fields are always present, absent ones as null. */
  readonly nullFilled: boolean;
  /** Fields with implicit presence are always present (alwaysEmitImplicit). */
  readonly implicitEmitted: boolean;
}

const PROTO_NAMES: Naming = { suffix: "", key: (f) => f.name, nullFilled: false, implicitEmitted: true };
const STYTCH: Naming = { ...PROTO_NAMES, suffix: ".Stytch", nullFilled: true };
const LEGACY: Naming = { suffix: ".Legacy", key: (f) => f.jsonName, nullFilled: true, implicitEmitted: true };
const PLAIN: Naming = { suffix: ".Json", key: (f) => f.jsonName, nullFilled: false, implicitEmitted: false };

function namingOf(contract: ApiContract): Naming {
  switch (contract) {
    case ApiContract.STYTCH:
    case ApiContract.STYTCH_PUBLIC:
      return STYTCH;
    case ApiContract.LEGACY:
      return LEGACY;
    case ApiContract.ADMIN:
      return PROTO_NAMES;
    default:
      return PLAIN;
  }
}

const INT64 = new Set([ScalarType.INT64, ScalarType.UINT64, ScalarType.SINT64, ScalarType.FIXED64, ScalarType.SFIXED64]);
const INT32 = new Set([ScalarType.INT32, ScalarType.SINT32, ScalarType.SFIXED32]);
const UINT32 = new Set([ScalarType.UINT32, ScalarType.FIXED32]);

function scalarSchema(t: ScalarType): Schema {
  if (t === ScalarType.STRING) return { type: "string" };
  if (t === ScalarType.BOOL) return { type: "boolean" };
  if (t === ScalarType.BYTES) return { type: "string", contentEncoding: "base64" };
  if (t === ScalarType.DOUBLE || t === ScalarType.FLOAT) return { type: "number" };
  if (INT32.has(t)) return { type: "integer", format: "int32" };
  if (UINT32.has(t)) return { type: "integer", format: "int32", minimum: 0 };
  if (INT64.has(t)) return { type: ["string", "integer"], format: "int64", description: "A 64-bit integer, written as a decimal string." };
  return {};
}

const WELL_KNOWN: Record<string, Schema> = {
  "google.protobuf.Timestamp": { type: "string", format: "date-time" },
  "google.protobuf.Duration": { type: "string", pattern: "^-?[0-9]+(\\.[0-9]+)?s$" },
  "google.protobuf.Struct": { type: "object" },
  "google.protobuf.Value": {},
  "google.protobuf.ListValue": { type: "array" },
  "google.protobuf.Empty": { type: "object", additionalProperties: false },
  "google.protobuf.FieldMask": { type: "string" },
  "google.protobuf.Any": { type: "object" },
  "google.protobuf.StringValue": { type: "string" },
  "google.protobuf.BoolValue": { type: "boolean" },
  "google.protobuf.Int32Value": { type: "integer" },
  "google.protobuf.UInt32Value": { type: "integer", minimum: 0 },
  "google.protobuf.Int64Value": { type: ["string", "integer"] },
  "google.protobuf.UInt64Value": { type: ["string", "integer"] },
  "google.protobuf.DoubleValue": { type: "number" },
  "google.protobuf.FloatValue": { type: "number" },
  "google.protobuf.BytesValue": { type: "string", contentEncoding: "base64" },
};

const nullable = (s: Schema): Schema => ({ anyOf: [s, { type: "null" }] });

class SchemaBuilder {
  readonly components: Record<string, Schema> = {};

  constructor(private readonly describe: Describe) {}

  /** A $ref to the message's component in the given spelling, building it on first use. */
  message(m: DescMessage, naming: Naming, topLevel: boolean): Schema {
    const wellKnown = WELL_KNOWN[m.typeName];
    if (wellKnown) return wellKnown;
    // Null-filling applies to the top level only: nested messages are plain.
    const spelling = topLevel || !naming.nullFilled ? naming : { ...naming, nullFilled: false, suffix: `${naming.suffix}.Nested` };
    const name = `${m.typeName}${spelling.suffix}`;
    if (!(name in this.components)) {
      this.components[name] = {}; // Placeholder: recursive messages refer to it.
      const properties: Record<string, Schema> = {};
      const required: string[] = [];
      for (const f of m.fields) {
        const key = spelling.key(f);
        const present = spelling.nullFilled || (spelling.implicitEmitted && alwaysEmitted(f));
        let schema = this.field(f, naming);
        if (spelling.nullFilled && !alwaysEmitted(f)) schema = nullable(schema);
        const doc = this.describe(f);
        properties[key] = doc ? { ...schema, description: doc } : schema;
        if (present) required.push(key);
      }
      const doc = this.describe(m);
      this.components[name] = {
        type: "object",
        ...(doc ? { description: doc } : {}),
        properties,
        ...(required.length > 0 ? { required } : {}),
        additionalProperties: false,
      };
    }
    return { $ref: `#/components/schemas/${name}` };
  }

  private field(f: DescField, naming: Naming): Schema {
    switch (f.fieldKind) {
      case "scalar":
        return { ...scalarSchema(f.scalar), ...ruleKeywords(f) };
      case "enum":
        return this.enumSchema(f.enum);
      case "message":
        return this.message(f.message, naming, false);
      case "list":
        return {
          type: "array",
          items: f.listKind === "scalar" ? scalarSchema(f.scalar) : f.listKind === "enum" ? this.enumSchema(f.enum) : this.message(f.message, naming, false),
        };
      case "map":
        return {
          type: "object",
          additionalProperties:
            f.mapKind === "scalar" ? scalarSchema(f.scalar) : f.mapKind === "enum" ? this.enumSchema(f.enum) : this.message(f.message, naming, false),
        };
    }
  }

  private enumSchema(e: DescEnum): Schema {
    const doc = this.describe(e);
    return { type: "string", enum: e.values.map((v) => v.name), ...(doc ? { description: doc } : {}) };
  }
}

/** Whether toJson with alwaysEmitImplicit writes the field even when unset. */
function alwaysEmitted(f: DescField): boolean {
  if (f.fieldKind === "list" || f.fieldKind === "map") return true;
  if (f.fieldKind === "message" || f.oneof) return false;
  return f.presence === 2; // IMPLICIT
}

const STYTCH_ERROR: Schema = {
  type: "object",
  description: "Stytch's error object.",
  properties: {
    status_code: { type: "integer", description: "The HTTP status, repeated." },
    request_id: { type: "string", description: "The request's id, also sent as the x-request-id header." },
    error_type: { type: "string", enum: [...new Set(Object.values(ERROR_MAP).map((m) => m.stytch))].sort() },
    error_message: { type: "string" },
    error_url: { type: "string", format: "uri" },
  },
  required: ["status_code", "request_id", "error_type", "error_message", "error_url"],
  additionalProperties: false,
};

const LEGACY_ERROR: Schema = {
  type: "object",
  description: "The legacy portal's ActionConfirmation envelope, as a failure: all five keys, in order.",
  properties: {
    WasSuccessful: { const: false },
    Value: { type: "null" },
    Status: { type: "integer", description: "The HTTP status, repeated." },
    Message: { type: "string" },
    Errors: {
      anyOf: [{ type: "object", additionalProperties: { type: "array", items: { type: "string" } } }, { type: "null" }],
      description: "Each malformed parameter with what is wrong with it; null when no parameter is at fault.",
    },
  },
  required: ["WasSuccessful", "Value", "Status", "Message", "Errors"],
  additionalProperties: false,
};

const CONNECT_ERROR: Schema = {
  type: "object",
  description: "An error with a Connect code name.",
  properties: { code: { type: "string" }, message: { type: "string" } },
  required: ["code", "message"],
  additionalProperties: false,
};

/** The HTTP statuses each contract's routes may answer with an error, besides "default". */
function errorStatuses(contract: ApiContract, hasBody: boolean): number[] {
  const common = [400, 404, 405, 429, 500, 503, 504];
  if (hasBody) common.push(413, 415);
  if (contract === ApiContract.STYTCH || contract === ApiContract.ADMIN) common.push(401);
  return [...new Set(common)].sort((a, b) => a - b);
}

const STATUS_TEXT: Record<number, string> = {
  400: "The request is malformed; the answer names each parameter at fault.",
  401: "Missing or wrong credentials.",
  404: "Not found (or the admin API is off).",
  405: "Wrong HTTP method for this path.",
  413: "The request body is too large.",
  415: "The body is not JSON.",
  429: "Rate limited; Retry-After says when to try again.",
  500: "Something went wrong on the server.",
  503: "The service is temporarily unavailable.",
  504: "The call's deadline passed.",
};

export interface OpenApiInfo {
  readonly title: string;
  readonly version: string;
  readonly description: string;
}

/** The OpenAPI 3.1 document of the REST routes of the given services. */
export function buildOpenApi(services: readonly DescService[], describe: Describe, info: OpenApiInfo): Record<string, unknown> {
  const schemas = new SchemaBuilder(describe);
  const paths: Record<string, Record<string, unknown>> = {};
  const tags: { name: string; description?: string }[] = [];
  const sharedResponses: Record<string, unknown> = {};
  for (const service of services) {
    let tagged = false;
    for (const method of service.methods) {
      const binding = httpBindingOf(method);
      if (!binding) continue;
      if (!tagged) {
        const doc = describe(service);
        tags.push({ name: service.name, ...(doc ? { description: doc } : {}) });
        tagged = true;
      }
      const contract = contractOf(method);
      const naming = namingOf(contract);
      const hasBody = binding.body === "*";
      const variables = [...binding.path.matchAll(/\{([a-z_][a-z0-9_.]*)\}/gi)].map((m) => m[1]!);
      const parameters: Schema[] = [];
      for (const name of variables) {
        const field = method.input.fields.find((f) => f.name === name || f.jsonName === name);
        parameters.push({ name, in: "path", required: true, schema: field ? paramSchema(field) : { type: "string" }, ...doc(field) });
      }
      if (!hasBody) {
        for (const field of method.input.fields) {
          if (variables.includes(field.name) || variables.includes(field.jsonName)) continue;
          if (field.fieldKind === "message" || field.fieldKind === "map") continue;
          parameters.push({ name: naming.key(field), in: "query", schema: paramSchema(field), ...doc(field) });
        }
      }
      const errorSchema = contract === ApiContract.STYTCH || contract === ApiContract.STYTCH_PUBLIC ? "StytchError" : contract === ApiContract.LEGACY ? "LegacyError" : "ConnectError";
      const errorResponse = (status: number | "default") => {
        const name = `${errorSchema}${status === "default" ? "" : status}`;
        sharedResponses[name] ??= {
          description: status === "default" ? "Any other failure, in the same shape." : STATUS_TEXT[status]!,
          content: { "application/json": { schema: { $ref: `#/components/schemas/${errorSchema}` } } },
        };
        return { $ref: `#/components/responses/${name}` };
      };
      const responses: Record<string, unknown> = {
        "200": {
          description: contract === ApiContract.LEGACY ? "The ActionConfirmation envelope." : "The answer.",
          content: { "application/json": { schema: schemas.message(method.output, naming, true) } },
        },
      };
      for (const status of errorStatuses(contract, hasBody)) responses[String(status)] = errorResponse(status);
      responses.default = errorResponse("default");
      const comment = describe(method);
      paths[binding.path] ??= {};
      paths[binding.path]![binding.verb.toLowerCase()] = {
        operationId: `${service.name}_${method.name}`,
        summary: comment?.split("\n")[0] ?? method.name,
        ...(comment ? { description: comment } : {}),
        tags: [service.name],
        security: contract === ApiContract.STYTCH ? [{ stytchBasic: [] }] : contract === ApiContract.ADMIN ? [{ adminBearer: [] }] : [],
        ...(parameters.length > 0 ? { parameters } : {}),
        ...(hasBody
          ? { requestBody: { required: true, content: { "application/json": { schema: schemas.message(method.input, { ...naming, nullFilled: false, implicitEmitted: false }, false) } } } }
          : {}),
        responses,
      };
    }
  }
  const sorted = Object.fromEntries(Object.entries(schemas.components).sort(([a], [b]) => a.localeCompare(b)));
  return {
    openapi: "3.1.0",
    info: { title: info.title, version: info.version, description: info.description },
    tags,
    paths,
    components: {
      schemas: { ...sorted, StytchError: STYTCH_ERROR, LegacyError: LEGACY_ERROR, ConnectError: CONNECT_ERROR },
      responses: Object.fromEntries(Object.entries(sharedResponses).sort(([a], [b]) => a.localeCompare(b))),
      securitySchemes: {
        stytchBasic: { type: "http", scheme: "basic", description: "HTTP Basic with the project_id as user and the project secret as password." },
        adminBearer: { type: "http", scheme: "bearer", description: "The ADMIN_TOKEN the server was started with." },
      },
    },
  };

  function doc(field: DescField | undefined): Schema {
    const d = field && describe(field);
    return d ? { description: d } : {};
  }
}

function paramSchema(f: DescField): Schema {
  if (f.fieldKind === "scalar") return { ...scalarSchema(f.scalar), ...ruleKeywords(f) };
  if (f.fieldKind === "enum") return { type: "string", enum: f.enum.values.map((v) => v.name) };
  if (f.fieldKind === "list" && f.listKind === "scalar") return { type: "array", items: scalarSchema(f.scalar) };
  return { type: "string" };
}
