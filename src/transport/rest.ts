// REST transcoding, derived at start-up from the google.api.http annotation
// of every RPC: path and verb, path variables and query parameters onto
// fields by their proto JSON names, `body: "*"` onto the whole request. A
// matched route runs the RPC's own implementation through the same
// interceptors as gRPC and Connect, then answers in its contract's shape.
import { fromJson, ScalarType, type DescField, type DescMessage, type DescMethodUnary, type JsonObject } from "@bufbuild/protobuf";
import {
  ConnectError,
  type ContextValues,
  type Interceptor,
  type MethodImplSpec,
  type ServiceImplSpec,
} from "@connectrpc/connect";
import { invokeUnaryImplementation } from "@connectrpc/connect/protocol";
import type { Logger } from "pino";
import { DomainError, invalidFields, type FieldViolation } from "../domain/errors.js";
import { abortWhenCallerLeaves, createCallContext } from "./call-context.js";
import { requestIdOf } from "./context.js";
import { TransportError } from "./transport-error.js";
import { ApiContract, contractOf, httpBindingOf } from "./contract.js";
import { shapeFor, type RestShape } from "./contracts/shapes.js";
import { type ErrorShape, errorShapeOf, writeError } from "./error-writer.js";
import { bothInOneof, violationsOf } from "./interceptors/validate.js";

import { bodyBytes, type NodeRequest, type NodeResponse, readRequestBody, requestHeaders, writeJson } from "./http-io.js";

export type { NodeRequest, NodeResponse } from "./http-io.js";

interface Route {
  readonly verb: string;
  readonly template: string;
  readonly pattern: RegExp;
  readonly variables: readonly string[];
  readonly hasBody: boolean;
  readonly method: DescMethodUnary;
  readonly spec: UnarySpec;
  readonly shape: RestShape;
}

type UnarySpec = Extract<MethodImplSpec, { kind: "unary" }>;

/** A route whose path template matched a request path. */
export interface RouteMatch {
  readonly route: Route;
  readonly match: RegExpExecArray;
}

export interface RestOptions {
  readonly interceptors: readonly Interceptor[];
  readonly maxBodyBytes: number;
  readonly logger: Logger;
  /** The same per-call values the Connect adapter gives the other protocols. */
  readonly contextValues: (req: NodeRequest) => ContextValues;
}

export class RestRouter {
  private readonly routes: Route[] = [];

  constructor(
    services: readonly ServiceImplSpec[],
    private readonly options: RestOptions,
  ) {
    for (const { service, methods } of services) {
      for (const method of service.methods) {
        const binding = httpBindingOf(method);
        if (!binding) continue;
        const spec = methods[method.localName];
        if (!spec) throw new Error(`${method.name}: no implementation`);
        if (spec.kind !== "unary" || method.methodKind !== "unary") throw new Error(`${method.name}: only unary RPCs can have REST routes`);
        const { pattern, variables } = compileTemplate(binding.path);
        this.routes.push({
          verb: binding.verb,
          template: binding.path,
          pattern,
          variables,
          hasBody: binding.body === "*",
          method: method as DescMethodUnary,
          spec,
          shape: shapeFor(contractOf(method)),
        });
      }
    }
  }

  /** The routes, for logs and docs: "POST /v1/otps/email/send → SendEmailOtp". */
  describe(): string[] {
    return this.routes.map((r) => `${r.verb} ${r.template} → ${r.method.parent.name}.${r.method.name}`);
  }

  /** The REST routes with this path, whatever their verb, each with its match; matched once per request. */
  lookup(pathname: string): RouteMatch[] {
    const found: RouteMatch[] = [];
    for (const route of this.routes) {
      const match = route.pattern.exec(pathname);
      if (match) found.push({ route, match });
    }
    return found;
  }

  /** The error shape of the route family a path belongs to, for errors on unknown paths. */
  shapeForPath(pathname: string): ErrorShape {
    const first = pathname.split("/")[1];
    const sibling = this.routes.find((r) => r.template.split("/")[1] === first);
    return sibling ? sibling.shape.errors : errorShapeOf(ApiContract.UNSPECIFIED);
  }

  /** Handles the request if `found` (from lookup) has a route; returns false otherwise. */
  async handle(req: NodeRequest, res: NodeResponse, url: URL, found: readonly RouteMatch[]): Promise<boolean> {
    if (found.length === 0) return false;
    // Exact verbs only: a HEAD must not run a send.
    const hit = found.find((f) => f.route.verb === req.method);
    if (hit) {
      await this.serve(hit.route, hit.match, req, res, url);
      return true;
    }
    const allowed = found.map((f) => f.route.verb);
    res.setHeader("allow", allowed.join(", "));
    await this.fail(found[0]!.route.shape.errors, req, res, new TransportError("method_not_allowed", `Use ${allowed.join(" or ")} on ${url.pathname}.`));
    return true;
  }

  /** Answers a failure in the route family's error shape; `method` names the RPC whose request it was about. */
  async fail(shape: ErrorShape, req: NodeRequest, res: NodeResponse, err: unknown, values?: ContextValues, method?: DescMethodUnary): Promise<void> {
    writeError(res, shape, err, {
      requestId: requestIdOf(values ?? this.options.contextValues(req)),
      // A ConnectError came through the interceptors, which mapped and logged it.
      logger: err instanceof ConnectError ? undefined : this.options.logger,
      request: method?.input,
    });
  }

  private async serve(route: Route, match: RegExpExecArray, req: NodeRequest, res: NodeResponse, url: URL): Promise<void> {
    const values = this.options.contextValues(req);
    try {
      const input = await this.decode(route, match, req, url);
      const ctx = createCallContext({
        service: route.method.parent,
        method: route.method,
        protocolName: "rest",
        requestMethod: req.method ?? "GET",
        url: url.toString(),
        requestHeader: requestHeaders(req),
        contextValues: values,
      });
      abortWhenCallerLeaves(ctx, res);
      const output = await invokeUnaryImplementation(route.spec, ctx, input, [...this.options.interceptors]);
      ctx.responseHeader.forEach((v, k) => {
        res.setHeader(k, v);
      });
      writeJson(res, 200, route.shape.success(route.method.output, output));
    } catch (err) {
      // Errors from the interceptors are already mapped (and logged).
      await this.fail(route.shape.errors, req, res, err, values, route.method);
    }
  }

  private async decode(route: Route, match: RegExpExecArray, req: NodeRequest, url: URL) {
    const schema = route.method.input;
    let json: JsonObject = {};
    if (route.hasBody) json = await readJsonBody(req, this.options.maxBodyBytes);
    const malformed: FieldViolation[] = [];
    const given = new Set<DescField>();
    const assign = (key: string, value: string) => {
      const violation = assignQuery(schema, json, key, value, given);
      if (violation && !malformed.some((v) => v.field === violation.field && v.description === violation.description)) malformed.push(violation);
    };
    if (!route.hasBody) for (const [key, value] of url.searchParams) assign(key, value);
    route.variables.forEach((name, i) => {
      let value: string;
      try {
        value = decodeURIComponent(match[i + 1]!);
      } catch {
        throw new DomainError("invalid_argument", `The path's ${name} is not valid percent-encoding.`);
      }
      assign(name, value);
    });
    return decodeMessage(schema, json, malformed);
  }
}

function compileTemplate(template: string): { pattern: RegExp; variables: string[] } {
  const variables: string[] = [];
  const source = template
    .split("/")
    .map((segment) => {
      const v = /^\{([a-z_][a-z0-9_.]*)\}$/i.exec(segment);
      if (v) {
        variables.push(v[1]!);
        return "([^/]+)";
      }
      return segment.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    })
    .join("/");
  return { pattern: new RegExp(`^${source}/?$`), variables };
}

const INTEGER_TYPES = new Set([
  ScalarType.INT32, ScalarType.INT64, ScalarType.UINT32, ScalarType.UINT64, ScalarType.SINT32,
  ScalarType.SINT64, ScalarType.FIXED32, ScalarType.FIXED64, ScalarType.SFIXED32, ScalarType.SFIXED64,
]);

function findField(schema: DescMessage, name: string): DescField | undefined {
  return schema.fields.find((f) => f.jsonName === name || f.name === name);
}

/**
 * Puts one query parameter (or path variable) into the JSON to decode, by
 * JSON or proto name, dotted for nested fields. Returns a violation for a
 * value that is not of the field's kind instead of assigning it, and for a
 * second value of a field that holds one (`given` holds the fields already
 * set from the path or query): a proxy or firewall in front that reads the
 * first of two values must not see a different request from the one served.
 */
function assignQuery(
  schema: DescMessage,
  json: JsonObject,
  key: string,
  value: string,
  given: Set<DescField>,
): FieldViolation | undefined {
  const path = key.split(".");
  let target = json;
  let current: DescMessage = schema;
  for (let i = 0; i < path.length; i++) {
    const field = findField(current, path[i]!);
    if (!field) return undefined; // Unknown parameters are ignored, as in JSON bodies.
    if (i < path.length - 1) {
      if (field.fieldKind !== "message") return undefined;
      target[field.jsonName] ??= {};
      target = target[field.jsonName] as JsonObject;
      current = field.message;
      continue;
    }
    if (field.fieldKind !== "list") {
      if (given.has(field)) return { field: field.name, description: GIVEN_TWICE };
      given.add(field);
    }
    const scalar = field.fieldKind === "scalar" ? field.scalar : undefined;
    if (scalar !== undefined && INTEGER_TYPES.has(scalar) && !/^-?\d+$/.test(value)) {
      // Decimal digits only: JSON decoding would also take "0x1f" or " 7".
      return { field: field.name, description: WRONG_TYPE };
    }
    const typed = scalar === ScalarType.BOOL ? (value === "true" ? true : value === "false" ? false : value) : value;
    // The path or query value replaces a body value for the same field, whichever its spelling.
    if (field.name !== field.jsonName) delete target[field.name];
    if (field.fieldKind === "list") {
      target[field.jsonName] ??= [];
      (target[field.jsonName] as unknown[]).push(typed);
    } else target[field.jsonName] = typed;
  }
  return undefined;
}

const WRONG_TYPE = "has a value of the wrong type or out of range";
const GIVEN_TWICE = "is given more than once";

/**
 * Decodes JSON into a message. A value of the wrong type names its field,
 * and the fields that did decode are shape-checked too, so one answer lists
 * everything wrong with the request.
 */
function decodeMessage(schema: DescMessage, json: JsonObject, malformed: readonly FieldViolation[]) {
  if (malformed.length === 0) {
    try {
      return fromJson(schema, json, { ignoreUnknownFields: true });
    } catch {
      // Found field by field below.
    }
  }
  const violations: FieldViolation[] = [...malformed];
  const decodable: JsonObject = {};
  const seen = new Set<DescField>();
  for (const [key, value] of Object.entries(json)) {
    const known = findField(schema, key);
    if (known && seen.has(known)) {
      violations.push({ field: known.name, description: "is given more than once (in two spellings)" });
      continue;
    }
    if (known) seen.add(known);
    const rival = known?.oneof?.fields.find((f) => f !== known && seen.has(f));
    if (known && rival) {
      violations.push(bothInOneof(known, rival));
      continue;
    }
    try {
      fromJson(schema, { [key]: value }, { ignoreUnknownFields: true });
      decodable[key] = value;
    } catch {
      violations.push({ field: known?.name ?? key, description: WRONG_TYPE });
    }
  }
  const rest = violationsOf(schema, fromJson(schema, decodable, { ignoreUnknownFields: true }));
  throw invalidFields([...rest.filter((v) => !violations.some((w) => w.field === v.field)), ...violations]);
}

/** Reads a JSON body; a declared Content-Length over the limit was refused by the HTTP handler already. */
async function readJsonBody(req: NodeRequest, limit: number): Promise<JsonObject> {
  // Past the limit the rest is read and dropped, and the answer is 413 at once.
  const body = await readRequestBody(req, limit, true);
  if (body.length > limit) throw tooLarge(limit);
  if (body.length === 0) return {};
  const type = String(req.headers["content-type"] ?? "");
  if (!/^application\/json\s*(;|$)/i.test(type)) {
    throw new TransportError("unsupported_media_type", "Send the request body as JSON with Content-Type: application/json.");
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(bodyBytes(body).toString("utf8"));
  } catch {
    throw new DomainError("invalid_argument", "The request body is not valid JSON.");
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new DomainError("invalid_argument", "The request body must be a JSON object.");
  }
  return parsed as JsonObject;
}

export function tooLarge(limit: number): TransportError {
  return new TransportError("payload_too_large", `The request body is larger than ${limit} bytes.`);
}
