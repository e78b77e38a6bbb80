// Connect, gRPC and gRPC-Web on Node's request/response objects: what
// connect-node's connectNodeAdapter does, plus one shortcut. connect-es
// runs every gRPC call, unary ones too, through its streaming pipeline
// (a chain of async iterables per call, an AbortSignal aborted with a fresh
// DOMException when the call ends); on this service's hot path that cost
// gRPC about twice the CPU per send of REST. A unary gRPC call whose
// request is the common case — identity encoding, a valid grpc-timeout or
// none, exactly one uncompressed message of at most readMaxBytes that
// parses — is served here directly: the message is decoded, the RPC runs
// through invokeUnaryImplementation with the same interceptors (auth,
// validation, errors, metrics, deadlines) and context values, and the
// answer is the same headers, message and trailers connect-es writes
// (grpc-status and the error table's metadata via its setTrailerStatus).
// Anything else (another protocol, compression, a malformed or oversized
// body, a bad timeout) goes to connect-es's own handler, with the body
// already read handed to it unchanged, so every edge case answers as before.
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createConnectRouter,
  createHandlerContext,
  type ConnectRouter,
  type ContextValues,
  type Interceptor,
  type ServiceImplSpec,
} from "@connectrpc/connect";
import { compressionBrotli, compressionGzip, universalRequestFromNodeRequest, universalResponseToNodeResponse } from "@connectrpc/connect-node";
import { createAsyncIterable, invokeUnaryImplementation, type UniversalHandler } from "@connectrpc/connect/protocol";
import { parseTimeout, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import type { NodeRequest, NodeResponse } from "./rest.js";

export interface RpcAdapterOptions {
  readonly routes: (router: ConnectRouter) => void;
  readonly interceptors: Interceptor[];
  readonly readMaxBytes: number;
  readonly contextValues: (req: NodeRequest) => ContextValues;
  readonly fallback: (req: NodeRequest, res: NodeResponse) => void;
  /**
   * The services whose unary gRPC calls may take the shortcut: those the
   * router runs with exactly `interceptors` (not the platform services,
   * which run without them).
   */
  readonly shortcut: readonly ServiceImplSpec[];
}

/** The end of every call served here: the deadline timer stopped and the call's signal aborted without building a DOMException. */
const CALL_OVER = new ConnectError("call is over", Code.Canceled);
/** The client went away before its answer was written. */
const CLIENT_GONE = new ConnectError("the client went away", Code.Canceled);
const GRPC_CONTENT_TYPES = new Set(["application/grpc", "application/grpc+proto"]);

export function createRpcAdapter(o: RpcAdapterOptions): (req: NodeRequest, res: NodeResponse) => void {
  const router = createConnectRouter({ interceptors: o.interceptors, readMaxBytes: o.readMaxBytes, acceptCompression: [compressionGzip, compressionBrotli] });
  o.routes(router);
  const handlers = new Map<string, UniversalHandler>();
  for (const h of router.handlers) handlers.set(h.requestPath, h);
  const unary = unaryMethods(o.shortcut);

  const viaConnect = (uHandler: UniversalHandler, req: NodeRequest, res: NodeResponse, body?: Uint8Array) => {
    const uReq = universalRequestFromNodeRequest(req, res, undefined, o.contextValues(req));
    uHandler(body ? { ...uReq, body: createAsyncIterable([body]) } : uReq)
      .then((uRes) => universalResponseToNodeResponse(uRes, res))
      .catch(() => {
        // A write to a client that went away: nothing is left to answer.
      });
  };

  return (req, res) => {
    const path = req.url?.split("?", 1)[0] ?? "";
    const uHandler = handlers.get(path);
    if (!uHandler) return o.fallback(req, res);
    const encoding = req.headers["grpc-encoding"];
    const spec = unary.get(path);
    if (
      !spec ||
      req.method !== "POST" ||
      !GRPC_CONTENT_TYPES.has(String(req.headers["content-type"])) ||
      (encoding !== undefined && encoding !== "identity")
    ) {
      return viaConnect(uHandler, req, res);
    }
    readBody(req, o.readMaxBytes + 5).then(
      (body) => {
        if (!unaryGrpc(spec, o, req, res, body)) viaConnect(uHandler, req, res, body);
      },
      () => {
        // The request was cut (client gone, or the one-port request bound): no answer is due.
      },
    );
  };
}

/** The whole request body, or undefined when it is longer than `max` (connect-es then answers its own error). */
function readBody(req: NodeRequest, max: number): Promise<Uint8Array | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    req.on("data", (chunk: Buffer) => {
      length += chunk.length;
      if (length <= max) chunks.push(chunk);
    });
    req.once("end", () => resolve(length > max ? undefined : chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, length)));
    req.once("error", reject);
    req.once("aborted", () => reject(CLIENT_GONE));
  });
}

/**
 * Serves a unary gRPC call in the common case; false (nothing written) when
 * the request is anything else, for connect-es to answer.
 */
function unaryGrpc(spec: UnarySpec, o: RpcAdapterOptions, req: NodeRequest, res: NodeResponse, body: Uint8Array | undefined): boolean {
  // One uncompressed message, its length as announced.
  if (body === undefined || body.length < 5 || body[0] !== 0) return false;
  const size = new DataView(body.buffer, body.byteOffset, 5).getUint32(1);
  if (size !== body.length - 5 || size > o.readMaxBytes) return false;
  const timeout = parseTimeout(headerValue(req, "grpc-timeout") ?? null, Number.MAX_SAFE_INTEGER);
  if (timeout.error) return false;
  const method = spec.method;
  let input: ReturnType<typeof fromBinary>;
  try {
    input = fromBinary(method.input, body.subarray(5));
  } catch {
    return false;
  }

  const requestSignal = new AbortController();
  res.once("close", () => {
    if (!res.writableFinished) requestSignal.abort(CLIENT_GONE);
  });
  const ctx = createHandlerContext({
    service: method.parent,
    method,
    protocolName: "grpc",
    requestMethod: "POST",
    url: `http://${headerValue(req, ":authority") ?? headerValue(req, "host") ?? "localhost"}${req.url ?? ""}`,
    timeoutMs: timeout.timeoutMs,
    requestHeader: requestHeaders(req),
    requestSignal: requestSignal.signal,
    contextValues: o.contextValues(req),
    responseHeader: { "content-type": "application/grpc+proto" },
    responseTrailer: { "grpc-status": "0" },
  });
  invokeUnaryImplementation(spec, ctx, input, o.interceptors).then(
    (output) => {
      const message = toBinary(method.output, output as never);
      const frame = Buffer.allocUnsafe(5 + message.length);
      frame[0] = 0;
      frame.writeUInt32BE(message.length, 1);
      frame.set(message, 5);
      ctx.abort(CALL_OVER);
      answer(res, ctx.responseHeader, ctx.responseTrailer, frame);
    },
    (err: unknown) => {
      ctx.abort(CALL_OVER);
      const error = err instanceof ConnectError ? err : new ConnectError("internal error", Code.Internal, undefined, undefined, err);
      answer(res, ctx.responseHeader, setTrailerStatus(ctx.responseTrailer, error), undefined);
    },
  );
  return true;
}

function answer(res: NodeResponse, header: Headers, trailer: Headers, frame: Buffer | undefined): void {
  if (res.headersSent || res.writableEnded || res.destroyed) return;
  const r = res as import("node:http").ServerResponse;
  r.writeHead(200, plain(header));
  if (frame) r.write(frame);
  r.addTrailers(plain(trailer));
  r.end();
}

function plain(headers: Headers): Record<string, string> {
  const out: Record<string, string> = {};
  headers.forEach((value, key) => {
    out[key] = value;
  });
  return out;
}

function headerValue(req: NodeRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(", ") : v;
}

function requestHeaders(req: NodeRequest): Headers {
  const headers = new Headers();
  for (const key in req.headers) {
    if (key.charCodeAt(0) === 58 /* ":" */) continue;
    const value = req.headers[key];
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) headers.append(key, v);
    else headers.set(key, value);
  }
  return headers;
}

type UnarySpec = Parameters<typeof invokeUnaryImplementation>[0];

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
