// Connect, gRPC and gRPC-Web on Node's request/response objects: what
// connect-node's connectNodeAdapter does (connect-es's router, its request
// and response conversions), plus one shortcut. connect-es runs every gRPC
// call, unary ones too, through its streaming pipeline (a chain of async
// iterables per call), and ends every call by aborting its signal without
// a reason, which builds a DOMException with a stack; on this service's
// send path that made gRPC cost about twice the CPU per send of REST, and
// Connect over HTTP/2 half as much again. So a unary call in the common
// case — gRPC or the Connect protocol (binary or JSON), POST, an
// uncompressed request, a valid timeout header or none, one
// message within readMaxBytes that parses — to one of the application's
// services is served by unary-shortcut.ts with the same interceptors and
// context. Anything else (gRPC-Web, compression, GET, a malformed or
// oversized body, a bad timeout, the platform services) goes to connect-es's
// own handler, with the body already read handed to it unchanged, so every
// edge case answers as before.
import { createConnectRouter, type ConnectRouter, type ContextValues, type Interceptor, type ServiceImplSpec } from "@connectrpc/connect";
import { compressionBrotli, compressionGzip, universalRequestFromNodeRequest, universalResponseToNodeResponse } from "@connectrpc/connect-node";
import { createAsyncIterable, type UniversalHandler } from "@connectrpc/connect/protocol";
import { parseTimeout as parseConnectTimeout } from "@connectrpc/connect/protocol-connect";
import { parseTimeout as parseGrpcTimeout } from "@connectrpc/connect/protocol-grpc";
import type { NodeRequest, NodeResponse } from "./rest.js";
import { bodyBytes, readRequestBody } from "./http-io.js";
import { createUnaryShortcut, wireOf, type UnarySpec } from "./unary-shortcut.js";

export interface RpcAdapterOptions {
  readonly routes: (router: ConnectRouter) => void;
  readonly interceptors: Interceptor[];
  readonly readMaxBytes: number;
  readonly contextValues: (req: NodeRequest) => ContextValues;
  readonly fallback: (req: NodeRequest, res: NodeResponse) => void;
  /**
   * The services whose unary calls may take the shortcut: those the router
   * runs with exactly `interceptors` (not the platform services, which run
   * without them).
   */
  readonly shortcut: readonly ServiceImplSpec[];
}

export function createRpcAdapter(o: RpcAdapterOptions): (req: NodeRequest, res: NodeResponse) => void {
  const acceptCompression = [compressionGzip, compressionBrotli];
  const router = createConnectRouter({ interceptors: o.interceptors, readMaxBytes: o.readMaxBytes, acceptCompression });
  o.routes(router);
  const handlers = new Map<string, UniversalHandler>();
  for (const h of router.handlers) handlers.set(h.requestPath, h);
  const unary = unaryMethods(o.shortcut);
  const serve = createUnaryShortcut({ ...o, acceptCompression });

  /** connect-es's own handler; `body`: what was already read of the request. */
  const viaConnect = (uHandler: UniversalHandler, req: NodeRequest, res: NodeResponse, body?: Uint8Array[]) => {
    const uReq = universalRequestFromNodeRequest(req, res, undefined, o.contextValues(req));
    uHandler(body ? { ...uReq, body: createAsyncIterable(body) } : uReq)
      .then((uRes) => universalResponseToNodeResponse(uRes, res))
      .catch(() => {
        // A write to a client that went away: nothing is left to answer.
      });
  };

  return (req, res) => {
    const path = req.url?.split("?", 1)[0] ?? "";
    const uHandler = handlers.get(path);
    if (!uHandler) return o.fallback(req, res);
    forgetUnholdableDeadline(req);
    const spec = unary.get(path);
    const wire = spec && req.method === "POST" ? wireOf(req) : undefined;
    if (!spec || !wire) return viaConnect(uHandler, req, res);
    // gRPC frames the message in 5 bytes. Over the limit, connect-es is handed
    // the chunks read and refuses the size itself with its own error.
    readRequestBody(req, o.readMaxBytes + 5).then(
      (read) => {
        if (read.length > o.readMaxBytes + 5) return viaConnect(uHandler, req, res, read.chunks);
        const body = bodyBytes(read);
        if (!serve(spec, wire, req, res, body)) viaConnect(uHandler, req, res, [body]);
      },
      () => {
        // The request was cut (client gone, or the one-port request bound): no answer is due.
      },
    );
  };
}

/** The longest delay a Node timer holds; a longer one runs after 1 ms, with a warning on stderr. */
const LONGEST_TIMER_MS = 2 ** 31 - 1;
const TIMEOUT_HEADERS = [
  ["grpc-timeout", parseGrpcTimeout],
  ["connect-timeout-ms", parseConnectTimeout],
] as const;

/**
 * A deadline longer than a timer can hold (about 24.8 days; Connect allows
 * ten digits of milliseconds, gRPC eight of hours) is served as none: its
 * timer would fire at once and fail the call (connect-es's handler and the
 * shortcut alike), and no call here lasts a day, so nothing is lost. A
 * malformed header is left for the protocol to refuse.
 */
function forgetUnholdableDeadline(req: NodeRequest): void {
  for (const [name, parse] of TIMEOUT_HEADERS) {
    const value = req.headers[name];
    if (typeof value !== "string") continue;
    const timeout = parse(value, Number.MAX_SAFE_INTEGER);
    if (timeout.error === undefined && timeout.timeoutMs !== undefined && timeout.timeoutMs > LONGEST_TIMER_MS) delete req.headers[name];
  }
}

/** The unary methods of `services`, by request path. */
function unaryMethods(services: readonly ServiceImplSpec[]): Map<string, UnarySpec> {
  const byPath = new Map<string, UnarySpec>();
  for (const { service, methods } of services) {
    for (const method of service.methods) {
      const spec = methods[method.localName];
      if (spec?.kind === "unary") byPath.set(`/${service.typeName}/${method.name}`, spec as UnarySpec);
    }
  }
  return byPath;
}
