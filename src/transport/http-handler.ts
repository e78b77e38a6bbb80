// Everything the one port answers, in order: operational endpoints
// (/healthz, /readyz, /metrics, the dev mailbox), then the REST routes,
// then Connect (gRPC, gRPC-Web, Connect). Each request gets its call info
// (and request id, sent back as x-request-id) once, here.
import { createHash } from "node:crypto";
import type { Logger } from "pino";
import { createContextValues, type ContextValues } from "@connectrpc/connect";
import type { ApiDocs } from "../web/api-docs.js";
import type { WebAssets } from "../web/assets.js";
import { favicon } from "../web/favicon.js";
import type { ClientAddressOf } from "./client-address.js";
import { serveDevInbox, type DevMailboxView } from "./dev-inbox.js";
import { bearerCheck } from "./bearer.js";
import type { Cors } from "./cors.js";
import { callInfoKey, newCallInfo, requestIdOf } from "./context.js";
import type { Metrics } from "../observability/metrics.js";
import { connectAnswersReadable, failure, writeError } from "./error-writer.js";
import { type NodeRequest, type NodeResponse, writeJson } from "./http-io.js";
import { loggablePath } from "./loggable-path.js";
import { tooLarge, type RestRouter, type RouteMatch } from "./rest.js";

export type { DevMailboxView } from "./dev-inbox.js";

export interface HttpHandlerOptions {
  readonly rest: RestRouter;
  readonly connect: (req: NodeRequest, res: NodeResponse) => void;
  readonly metrics: Metrics;
  readonly metricsToken: string | undefined;
  /** With no metricsToken: true serves /metrics to anyone (embedded development), false not at all. */
  readonly metricsOpenWithoutToken: boolean;
  readonly devMailbox: DevMailboxView | undefined;
  readonly maxBodyBytes: number;
  /** The client address of a request, per TRUST_PROXY. */
  readonly clientAddressOf: ClientAddressOf;
  /** Database reachable and migrated, and not shutting down. */
  readonly ready: () => Promise<boolean>;
  readonly cors: Cors;
  /** The sign-in page; undefined: not served. */
  readonly web: { readonly assets: WebAssets; readonly businessId: number | null } | undefined;
  readonly logger: Logger;
  /** The trace id of the request's span, once tracing is wired; shown in the access line. */
  readonly traceIdOf?: (req: NodeRequest) => string | undefined;
  /** /openapi.json and the /docs page; undefined: not served. */
  readonly apiDocs?: ApiDocs;
  /** Answers a send refused for capacity before its body is read (send-gate.ts); true when it did. */
  readonly sendGate?: (req: NodeRequest, res: NodeResponse, pathname: string, found: readonly RouteMatch[]) => boolean;
}

const calls = new WeakMap<NodeRequest, ContextValues>();

/**
 * The per-call context values the handler made for a request, shared by REST
 * and Connect (so the request id in a body and in x-request-id agree).
 */
export function contextValuesFor(req: NodeRequest, clientAddressOf: ClientAddressOf): ContextValues {
  let values = calls.get(req);
  if (!values) {
    values = createContextValues().set(callInfoKey, newCallInfo(req.headers, req.socket?.remoteAddress, clientAddressOf, false));
    calls.set(req, values);
  }
  return values;
}

export function createHttpHandler(o: HttpHandlerOptions) {
  const metricsTokenMatches = o.metricsToken === undefined ? undefined : bearerCheck(o.metricsToken);
  const serve = async (req: NodeRequest, res: NodeResponse, url: URL, found: readonly RouteMatch[]): Promise<void> => {
    if (o.cors.apply(req, res)) return;
    if (o.sendGate?.(req, res, url.pathname, found)) return;
    const get = req.method === "GET" || req.method === "HEAD";
    if (get && url.pathname === "/healthz") return writeJson(res, 200, { status: "ok" });
    if (get && o.web && (url.pathname === "/" || url.pathname === "/signin")) {
      return send(res, 200, "text/html; charset=utf-8", o.web.assets.html, signInPagePolicy(o.web.assets.html));
    }
    if (get && o.web && url.pathname === "/signin/app.js") {
      return send(res, 200, "text/javascript; charset=utf-8", o.web.assets.script);
    }
    if (get && o.web && url.pathname === "/signin/config.json") {
      return writeJson(res, 200, { business_id: o.web.businessId, dev_mailbox: o.devMailbox !== undefined });
    }
    if (get && url.pathname === "/favicon.ico") {
      const icon = favicon();
      (res as import("node:http").ServerResponse).writeHead(200, {
        "content-type": "image/x-icon",
        "content-length": icon.length,
        "cache-control": "public, max-age=86400",
        "x-content-type-options": "nosniff",
      });
      if (req.method === "HEAD") res.end();
      else res.end(icon);
      return;
    }
    if (get && o.apiDocs && url.pathname === "/openapi.json") {
      return send(res, 200, "application/json; charset=utf-8", o.apiDocs.openapi);
    }
    const docFile = get ? o.apiDocs?.files.get(url.pathname) : undefined;
    if (docFile) {
      const doc = await docFile();
      return send(res, 200, doc.type, doc.body);
    }
    if (get && url.pathname === "/readyz") {
      const ok = await o.ready();
      return writeJson(res, ok ? 200 : 503, { status: ok ? "ready" : "unavailable" });
    }
    // Closed /metrics (no token, not embedded) is not there at all: the
    // request goes on like any unknown path.
    if (get && url.pathname === "/metrics" && (metricsTokenMatches || o.metricsOpenWithoutToken)) {
      if (metricsTokenMatches && !metricsTokenMatches(req.headers.authorization)) {
        return writeError(res, "plain", failure("unauthenticated", "Send Authorization: Bearer <METRICS_TOKEN>."));
      }
      const body = await o.metrics.registry.metrics();
      (res as import("node:http").ServerResponse).writeHead(200, { "content-type": o.metrics.registry.contentType });
      res.end(body);
      return;
    }
    if (o.devMailbox && url.pathname.startsWith("/dev/mailbox") && serveDevInbox(o.devMailbox, req, res, url)) return;
    if (Number(req.headers["content-length"] ?? 0) > o.maxBodyBytes) {
      return o.rest.fail(o.rest.shapeForPath(url.pathname), req, res, tooLarge(o.maxBodyBytes));
    }
    if (await o.rest.handle(req, res, url, found)) return;
    const grpc = String(req.headers["content-type"] ?? "").startsWith("application/grpc");
    if (grpc) noteGrpcTrailers(res);
    connectAnswersReadable(res, grpc);
    o.connect(req, res);
  };

  return (req: NodeRequest, res: NodeResponse): void => {
    const started = process.hrtime.bigint();
    let url: URL;
    try {
      url = new URL(`http://localhost${req.url ?? "/"}`);
    } catch {
      writeError(res, "plain", failure("invalid_argument", "The request URL is malformed."));
      return;
    }
    const found = o.rest.lookup(url.pathname);
    const info = newCallInfo(req.headers, req.socket?.remoteAddress, o.clientAddressOf, found.length > 0);
    const values = createContextValues().set(callInfoKey, info);
    calls.set(req, values);
    res.setHeader("x-request-id", requestIdOf(values));
    res.once("finish", () => accessLine(o, req, res, url, found, started));
    serve(req, res, url, found).catch((err) => {
      o.logger.error({ err, request_id: info.id }, "request handling failed");
      writeError(res, "plain", failure("internal"));
    });
  };
}

/**
 * One line per request at info level, for operators: what was called, how it
 * ended, how long it took, and the request id exactly as the caller got it
 * in x-request-id (so grepping for one finds the other). The path only:
 * query strings can hold email addresses. trace_id joins it once tracing
 * provides one (HttpHandlerOptions.traceIdOf).
 */
function accessLine(o: HttpHandlerOptions, req: NodeRequest, res: NodeResponse, url: URL, found: readonly RouteMatch[], started: bigint): void {
  if (!o.logger.isLevelEnabled("info")) return;
  const r = res as import("node:http").ServerResponse;
  const route = found.find((f) => f.route.verb === req.method)?.route;
  const rpc = route
    ? `${route.method.parent.typeName}/${route.method.name}`
    : /^\/[\w.]+\/\w+$/.test(url.pathname) && url.pathname.includes(".")
      ? url.pathname.slice(1)
      : undefined;
  const grpcStatus = r.getHeader("grpc-status") ?? grpcTrailers.get(res);
  o.logger.info(
    {
      request_id: r.getHeader("x-request-id"),
      trace_id: o.traceIdOf?.(req),
      method: req.method,
      path: loggablePath(url.pathname),
      ...(route ? { route: route.template } : {}),
      ...(rpc ? { rpc, protocol: calls.get(req)?.get(callInfoKey).protocol } : {}),
      status: r.statusCode,
      ...(grpcStatus !== undefined ? { grpc_status: Number(grpcStatus) } : {}),
      ms: Math.round(Number(process.hrtime.bigint() - started) / 1e4) / 100,
    },
    "request",
  );
}

/** gRPC sends its status in trailers; they are noted for the access line. */
const grpcTrailers = new WeakMap<NodeRequest | NodeResponse, string>();

function noteGrpcTrailers(res: NodeResponse): void {
  const r = res as import("node:http").ServerResponse;
  const addTrailers = r.addTrailers.bind(r);
  r.addTrailers = (headers) => {
    const status = (headers as Record<string, unknown>)["grpc-status"];
    if (status !== undefined) grpcTrailers.set(res, String(status));
    addTrailers(headers);
  };
}

/** The policy of pages other than the sign-in page (the API docs, and files). */
const DEFAULT_POLICY = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'";

function send(res: NodeResponse, status: number, type: string, body: string | Buffer, policy = DEFAULT_POLICY): void {
  (res as import("node:http").ServerResponse).writeHead(status, {
    "content-type": type,
    "content-length": Buffer.byteLength(body),
    "cache-control": "no-cache",
    "content-security-policy": policy,
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
  });
  res.end(body);
}

const policies = new Map<string, string>();

/**
 * The page's Content-Security-Policy: its own script and styles only, no
 * inline script at all, an inline <style> only by its hash, nothing
 * elsewhere, and no framing (clickjacking a sign-in form). The page is fixed
 * once built, so its policy is computed once.
 */
function signInPagePolicy(html: string): string {
  let policy = policies.get(html);
  if (policy === undefined) {
    const styleHashes = [...html.matchAll(/<style>([\s\S]*?)<\/style>/g)].map(
      (m) => `'sha256-${createHash("sha256").update(m[1]!, "utf8").digest("base64")}'`,
    );
    policy = [
      "default-src 'none'",
      "script-src 'self'",
      `style-src 'self' ${styleHashes.join(" ")}`.trim(),
      "img-src 'self' data:",
      "connect-src 'self'",
      "base-uri 'none'",
      "form-action 'self'",
      "frame-ancestors 'none'",
    ].join("; ");
    policies.set(html, policy);
  }
  return policy;
}

