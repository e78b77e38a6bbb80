// Everything the one port answers, in order: operational endpoints
// (/healthz, /readyz, /metrics, the dev mailbox), then the REST routes,
// then Connect (gRPC, gRPC-Web, Connect). Each request gets its call info
// (and request id, sent back as x-request-id) once, here.
import { timingSafeEqual } from "node:crypto";
import type { Logger } from "pino";
import { createContextValues, type ContextValues } from "@connectrpc/connect";
import { hashToken } from "../domain/sign-in.js";
import type { WebAssets } from "../web/assets.js";
import type { Cors } from "./cors.js";
import { callInfoKey, newCallInfo, requestIdOf } from "./context.js";
import type { Metrics } from "../observability/metrics.js";
import { tooLarge, writeJson, type NodeRequest, type NodeResponse, type RestRouter, type RouteMatch } from "./rest.js";

/** What the dev mailbox route shows: the newest mails, as JSON. */
export interface DevMailboxView {
  list(): unknown;
}

export interface HttpHandlerOptions {
  readonly rest: RestRouter;
  readonly connect: (req: NodeRequest, res: NodeResponse) => void;
  readonly metrics: Metrics;
  readonly metricsToken: string | undefined;
  readonly devMailbox: DevMailboxView | undefined;
  readonly maxBodyBytes: number;
  readonly trustProxy: boolean;
  /** Database reachable and migrated, and not shutting down. */
  readonly ready: () => Promise<boolean>;
  readonly cors: Cors;
  /** The sign-in page; undefined: not served. */
  readonly web: { readonly assets: WebAssets; readonly businessId: number | null } | undefined;
  readonly logger: Logger;
}

const calls = new WeakMap<NodeRequest, ContextValues>();

/**
 * The per-call context values the handler made for a request, shared by REST
 * and Connect (so the request id in a body and in x-request-id agree).
 */
export function contextValuesFor(req: NodeRequest, trustProxy: boolean): ContextValues {
  let values = calls.get(req);
  if (!values) {
    values = createContextValues().set(callInfoKey, newCallInfo(req.headers, req.socket?.remoteAddress, trustProxy, false));
    calls.set(req, values);
  }
  return values;
}

export function createHttpHandler(o: HttpHandlerOptions) {
  const metricsDigest = o.metricsToken === undefined ? undefined : hashToken(o.metricsToken);
  const serve = async (req: NodeRequest, res: NodeResponse, url: URL, found: readonly RouteMatch[]): Promise<void> => {
    if (o.cors.apply(req, res)) return;
    const get = req.method === "GET" || req.method === "HEAD";
    if (get && url.pathname === "/healthz") return writeJson(res, 200, { status: "ok" });
    if (get && o.web && (url.pathname === "/" || url.pathname === "/signin")) {
      return send(res, 200, "text/html; charset=utf-8", o.web.assets.html);
    }
    if (get && o.web && url.pathname === "/signin/app.js") {
      return send(res, 200, "text/javascript; charset=utf-8", o.web.assets.script);
    }
    if (get && o.web && url.pathname === "/signin/config.json") {
      return writeJson(res, 200, { business_id: o.web.businessId, dev_mailbox: o.devMailbox !== undefined });
    }
    if (get && url.pathname === "/readyz") {
      const ok = await o.ready();
      return writeJson(res, ok ? 200 : 503, { status: ok ? "ready" : "unavailable" });
    }
    if (get && url.pathname === "/metrics") {
      const presented = /^Bearer (\S+)$/.exec(String(req.headers.authorization ?? ""))?.[1];
      if (metricsDigest && !(presented && timingSafeEqual(hashToken(presented), metricsDigest))) {
        return writeJson(res, 401, { code: "unauthenticated", message: "Send Authorization: Bearer <METRICS_TOKEN>." });
      }
      const body = await o.metrics.registry.metrics();
      (res as import("node:http").ServerResponse).writeHead(200, { "content-type": o.metrics.registry.contentType });
      res.end(body);
      return;
    }
    if (get && url.pathname === "/dev/mailbox" && o.devMailbox) return writeJson(res, 200, o.devMailbox.list());
    if (Number(req.headers["content-length"] ?? 0) > o.maxBodyBytes) {
      return o.rest.fail(o.rest.shapeForPath(url.pathname), req, res, tooLarge(o.maxBodyBytes));
    }
    if (await o.rest.handle(req, res, url, found)) return;
    parseErrorsAreBadInput(res);
    o.connect(req, res);
  };

  return (req: NodeRequest, res: NodeResponse): void => {
    const started = process.hrtime.bigint();
    let url: URL;
    try {
      url = new URL(`http://localhost${req.url ?? "/"}`);
    } catch {
      writeJson(res, 400, { code: "invalid_argument", message: "The request URL is malformed." });
      return;
    }
    const found = o.rest.lookup(url.pathname);
    const info = newCallInfo(req.headers, req.socket?.remoteAddress, o.trustProxy, found.length > 0);
    const values = createContextValues().set(callInfoKey, info);
    calls.set(req, values);
    res.setHeader("x-request-id", requestIdOf(values));
    if (o.logger.isLevelEnabled("debug")) res.once("finish", () => {
      // The path only: query strings can hold email addresses.
      o.logger.debug(
        { request_id: info.id, method: req.method, path: url.pathname, protocol: info.protocol, status: res.statusCode,
          ms: Number(process.hrtime.bigint() - started) / 1e6 },
        "request",
      );
    });
    serve(req, res, url, found).catch((err) => {
      o.logger.error({ err, request_id: info.id }, "request handling failed");
      writeJson(res, 500, { code: "internal", message: "Something went wrong on our side." });
    });
  };
}

/**
 * connect-es classifies a request body it cannot parse or decompress as
 * "internal" (as gRPC does), which the Connect protocol answers with HTTP
 * 500. That is the caller's bad input: such an answer is turned into the
 * invalid_argument error (400) before it leaves. Nothing else is touched:
 * other answers (and gRPC's, which are not HTTP 500s) pass as written.
 */
function parseErrorsAreBadInput(res: NodeResponse): void {
  const r = res as import("node:http").ServerResponse;
  const writeHead = r.writeHead.bind(r) as (...a: unknown[]) => unknown;
  const write = r.write.bind(r) as (...a: unknown[]) => boolean;
  const end = r.end.bind(r) as (...a: unknown[]) => unknown;
  let held: { headers: Record<string, string>; chunks: Buffer[] } | undefined;
  const chunkOf = (c: unknown) => (c instanceof Uint8Array || typeof c === "string" ? Buffer.from(c) : undefined);
  r.writeHead = ((...args: unknown[]) => {
    if (args[0] !== 500) return writeHead(...args);
    // Connect may call writeHead again before end (headersSent stays false
    // while held): keep what was written.
    held = { headers: (args[1] as Record<string, string> | undefined) ?? {}, chunks: held?.chunks ?? [] };
    return r;
  }) as typeof r.writeHead;
  r.write = ((chunk: unknown, ...rest: unknown[]) => {
    if (!held) return write(chunk, ...rest);
    const b = chunkOf(chunk);
    if (b) held.chunks.push(b);
    const callback = rest.find((x) => typeof x === "function") as (() => void) | undefined;
    if (callback) process.nextTick(callback);
    return true;
  }) as typeof r.write;
  r.end = ((chunk?: unknown, ...rest: unknown[]) => {
    if (!held) return end(chunk, ...rest);
    const b = typeof chunk === "function" ? undefined : chunkOf(chunk);
    if (b) held.chunks.push(b);
    let body = Buffer.concat(held.chunks).toString("utf8");
    let status = 500;
    try {
      const parsed = JSON.parse(body) as { code?: string; message?: string };
      if (parsed.code === "internal" && /^(parse binary:|decompression failed)/.test(parsed.message ?? "")) {
        status = 400;
        body = JSON.stringify({ code: "invalid_argument", message: `The request message cannot be read (${parsed.message})` });
      }
    } catch {
      // Not a Connect error body: leave it as it is.
    }
    writeHead(status, { ...held.headers, "content-length": String(Buffer.byteLength(body)) });
    return end(body);
  }) as typeof r.end;
}

function send(res: NodeResponse, status: number, type: string, body: string): void {
  (res as import("node:http").ServerResponse).writeHead(status, {
    "content-type": type,
    "content-length": Buffer.byteLength(body),
    "cache-control": "no-cache",
    "content-security-policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:",
    "x-content-type-options": "nosniff",
  });
  res.end(body);
}

