// The common case of a unary call over gRPC or the Connect protocol, served
// without connect-es's per-call machinery (see rpc-adapter.ts for why and
// when): the message parsed with connect-es's own serialisation, the RPC
// run through invokeUnaryImplementation with the interceptors every
// protocol has, and the answer written as connect-es writes it.
import { Code, ConnectError, type ContextValues, type Interceptor } from "@connectrpc/connect";
import {
  compressionNegotiate,
  createMethodSerializationLookup,
  invokeUnaryImplementation,
  validateReadWriteMaxBytes,
  type Compression,
} from "@connectrpc/connect/protocol";
import { codeToHttpStatus, errorToJsonBytes, parseTimeout as parseConnectTimeout, trailerMux } from "@connectrpc/connect/protocol-connect";
import { parseTimeout as parseGrpcTimeout, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { abortWhenCallerLeaves, createCallContext } from "./call-context.js";
import { headerRecord, type NodeRequest, type NodeResponse, requestHeaders, writeWhole } from "./http-io.js";

export type UnarySpec = Parameters<typeof invokeUnaryImplementation>[0];

/** What a call is sent as: gRPC (binary only here), or Connect binary or JSON. */
export type Wire = "grpc" | "connect-proto" | "connect-json";

/** The wire a request's Content-Type names, when the shortcut may serve it. */
export function wireOf(req: NodeRequest): Wire | undefined {
  const type = req.headers["content-type"];
  if (type === "application/grpc" || type === "application/grpc+proto") {
    const encoding = req.headers["grpc-encoding"];
    return encoding === undefined || encoding === "identity" ? "grpc" : undefined;
  }
  const encoding = req.headers["content-encoding"];
  const version = req.headers["connect-protocol-version"];
  // A compressed request is left to connect-es.
  if (encoding !== undefined && encoding !== "identity") return undefined;
  if (version !== undefined && version !== "1") return undefined;
  if (type === "application/proto") return "connect-proto";
  if (type === "application/json" || type === "application/json; charset=utf-8") return "connect-json";
  return undefined;
}

export interface ShortcutOptions {
  readonly interceptors: Interceptor[];
  readonly readMaxBytes: number;
  readonly contextValues: (req: NodeRequest) => ContextValues;
  /** The compressions the router accepts: a Connect answer is compressed as connect-es would. */
  readonly acceptCompression: Compression[];
}

/** The end of every call served here: its deadline timer stopped, its signal aborted without building a DOMException. */
const CALL_OVER = new ConnectError("call is over", Code.Canceled);
/** The client went away before its answer was written. */
const CLIENT_GONE = new ConnectError("the client went away", Code.Canceled);

export function createUnaryShortcut(o: ShortcutOptions) {
  const limits = validateReadWriteMaxBytes(o.readMaxBytes, undefined, undefined);
  const serializers = new WeakMap<UnarySpec, ReturnType<typeof createMethodSerializationLookup>>();
  const serializationOf = (spec: UnarySpec) => {
    let s = serializers.get(spec);
    if (!s) {
      s = createMethodSerializationLookup(spec.method, undefined, undefined, limits);
      serializers.set(spec, s);
    }
    return s;
  };

  /**
   * Serves the call; false (nothing written) when the request is not the
   * common case, for connect-es to answer with the same body.
   */
  return (spec: UnarySpec, wire: Wire, req: NodeRequest, res: NodeResponse, body: Uint8Array): boolean => {
    const grpc = wire === "grpc";
    let message = body;
    if (grpc) {
      // One uncompressed message, its length as announced.
      if (body.length < 5 || body[0] !== 0) return false;
      if (new DataView(body.buffer, body.byteOffset, 5).getUint32(1) !== body.length - 5) return false;
      message = body.subarray(5);
    }
    if (message.length > o.readMaxBytes) return false;
    const timeoutHeader = headerValue(req, grpc ? "grpc-timeout" : "connect-timeout-ms") ?? null;
    const timeout = grpc ? parseGrpcTimeout(timeoutHeader, Number.MAX_SAFE_INTEGER) : parseConnectTimeout(timeoutHeader, Number.MAX_SAFE_INTEGER);
    if (timeout.error) return false;
    const serialization = serializationOf(spec);
    const binary = wire !== "connect-json";
    let input: unknown;
    try {
      input = serialization.getI(binary).parse(message);
    } catch {
      return false;
    }

    const ctx = createCallContext({
      service: spec.method.parent,
      method: spec.method,
      protocolName: grpc ? "grpc" : "connect",
      requestMethod: "POST",
      url: `http://${headerValue(req, ":authority") ?? headerValue(req, "host") ?? "localhost"}${req.url ?? ""}`,
      timeoutMs: timeout.timeoutMs,
      requestHeader: requestHeaders(req),
      contextValues: o.contextValues(req),
      responseHeader: new Headers({ "content-type": grpc ? "application/grpc+proto" : binary ? "application/proto" : "application/json" }),
      responseTrailer: grpc ? new Headers({ "grpc-status": "0" }) : undefined,
    });
    abortWhenCallerLeaves(ctx, res, CLIENT_GONE);
    invokeUnaryImplementation(spec, ctx, input as never, o.interceptors).then(
      (output) => {
        ctx.abort(CALL_OVER);
        const bytes = serialization.getO(binary).serialize(output);
        if (grpc) writeGrpc(res, ctx.responseHeader, ctx.responseTrailer, bytes);
        else void compressed(req, ctx.responseHeader, bytes).then((body) => writeConnect(res, 200, trailerMux(ctx.responseHeader, ctx.responseTrailer), body));
      },
      (err: unknown) => {
        ctx.abort(CALL_OVER);
        const error = err instanceof ConnectError ? err : new ConnectError("internal error", Code.Internal, undefined, undefined, err);
        if (grpc) return writeGrpc(res, ctx.responseHeader, setTrailerStatus(ctx.responseTrailer, error), undefined);
        ctx.responseHeader.set("content-type", "application/json");
        error.metadata.forEach((value, key) => {
          ctx.responseHeader.set(key, value);
        });
        void compressed(req, ctx.responseHeader, errorToJsonBytes(error, undefined)).then((body) =>
          writeConnect(res, codeToHttpStatus(error.code), trailerMux(ctx.responseHeader, ctx.responseTrailer), body),
        );
      },
    );
    return true;
  };

  /** A Connect answer's body, compressed (and its header saying so) when the caller accepts it and it is large enough, as connect-es does. */
  async function compressed(req: NodeRequest, header: Headers, body: Uint8Array): Promise<Uint8Array> {
    const accepted = headerValue(req, "accept-encoding");
    if (accepted === undefined || body.byteLength < limits.compressMinBytes) return body;
    const compression = compressionNegotiate(o.acceptCompression, null, accepted, "accept-encoding").response;
    if (!compression) return body;
    header.set("content-encoding", compression.name);
    return compression.compress(body);
  }
}

function writable(res: NodeResponse): boolean {
  return !(res.headersSent || res.writableEnded || res.destroyed);
}

function writeGrpc(res: NodeResponse, header: Headers, trailer: Headers, message: Uint8Array | undefined): void {
  if (!writable(res)) return;
  const r = res as import("node:http").ServerResponse;
  r.writeHead(200, headerRecord(header));
  if (message) {
    const frame = Buffer.allocUnsafe(5 + message.length);
    frame[0] = 0;
    frame.writeUInt32BE(message.length, 1);
    frame.set(message, 5);
    r.write(frame);
  }
  r.addTrailers(headerRecord(trailer));
  r.end();
}

function writeConnect(res: NodeResponse, status: number, header: Headers, body: Uint8Array): void {
  if (!writable(res)) return;
  const headers = headerRecord(header);
  headers["content-length"] = String(body.byteLength);
  writeWhole(res, status, headers, body);
}

function headerValue(req: NodeRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(", ") : v;
}
