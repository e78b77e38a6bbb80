// The one writer of error bytes. Every failure a caller sees leaves through
// here, in the shape its route speaks: a REST body (Stytch, the legacy
// envelope, or a Connect-style object for the admin API and unknown paths),
// or a ConnectError that connect-es serialises for Connect, gRPC and
// gRPC-Web. What a reason becomes is a row of the one error table
// (error-mapping.ts); the per-contract differences are the rows of BODIES.
import { create, type DescMessage } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { ConnectError } from "@connectrpc/connect";
import { codeToHttpStatus, errorToJsonBytes } from "@connectrpc/connect/protocol-connect";
import { setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import type { Logger } from "pino";
import {
  BadRequest_FieldViolationSchema,
  BadRequestSchema,
  ErrorInfoSchema,
  RetryInfoSchema,
} from "../../gen/google/rpc/error_details_pb.js";
import { DomainError, type FieldViolation, withoutStackTrace } from "../domain/errors.js";
import { ApiContract } from "./contract.js";
import { connectCodeName, connectRaised, ERROR_MAP, type Failure, toFailure, type WireReason } from "./error-mapping.js";
import { headerRecord, type NodeRequest, type NodeResponse, writeJson } from "./http-io.js";
import { TransportError } from "./transport-error.js";

/** How a route family spells an error body. */
export type ErrorShape = "stytch" | "legacy" | "plain";

export function errorShapeOf(contract: ApiContract): ErrorShape {
  switch (contract) {
    case ApiContract.STYTCH:
    case ApiContract.STYTCH_PUBLIC:
      return "stytch";
    case ApiContract.LEGACY:
      return "legacy";
    default:
      // The admin API and paths of no route family: Connect's error object.
      return "plain";
  }
}

/** What a body may name besides the failure: the request id, and the request message for JSON field names. */
interface BodyContext {
  readonly requestId: string;
  readonly request: DescMessage | undefined;
}

const BODIES: Readonly<Record<ErrorShape, (failure: Failure, c: BodyContext) => unknown>> = {
  // Stytch's documented error object; messages name fields by proto path.
  stytch(failure, c) {
    const row = ERROR_MAP[failure.reason];
    return {
      status_code: row.http,
      request_id: c.requestId,
      error_type: row.stytch,
      error_message: failure.violations.length > 0 ? describeViolations(failure.violations) : failure.message,
      error_url: `https://stytch.com/docs/api/errors/${row.http}#${row.stytch}`,
    };
  },
  // The legacy ActionConfirmation envelope: all five keys, in order; Errors
  // by the JSON names the portal sends.
  legacy(failure, c) {
    const row = ERROR_MAP[failure.reason];
    let errors: Record<string, string[]> | null = null;
    for (const v of failure.violations) {
      const name = jsonPath(c.request, v.field);
      errors ??= {};
      errors[name] ??= [];
      errors[name].push(`${name} ${v.description}`);
    }
    return { WasSuccessful: false, Value: null, Status: row.http, Message: row.legacy, Errors: errors };
  },
  plain(failure) {
    return { code: connectCodeName(ERROR_MAP[failure.reason].code), message: failure.message };
  },
};

/** A failure the transport states itself (a malformed URL, a refused request), not one thrown; by default in the table's words. */
export function failure(reason: WireReason, message: string = ERROR_MAP[reason].legacy): Failure {
  return { reason, message, violations: [], retryAfterSeconds: undefined };
}

export interface WriteOptions {
  /** For the Stytch shape, which echoes it; the others do not. */
  readonly requestId?: string;
  /** Logs causes the caller must not see; omit for an error mapped (and logged) already. */
  readonly logger?: Logger;
  /** The RPC's request message, whose descriptor gives the JSON names of violated fields. */
  readonly request?: DescMessage;
}

/** Writes a failure (or anything thrown) as a JSON error body in the route family's shape. */
export function writeError(res: NodeResponse, shape: ErrorShape, err: unknown, o: WriteOptions = {}): void {
  const f = isFailure(err) ? err : toFailure(err, o.logger);
  if (f.retryAfterSeconds !== undefined) res.setHeader("retry-after", String(f.retryAfterSeconds));
  writeJson(res, ERROR_MAP[f.reason].http, BODIES[shape](f, { requestId: o.requestId ?? "", request: o.request }));
}

function isFailure(err: unknown): err is Failure {
  return typeof err === "object" && err !== null && !(err instanceof Error) && "reason" in err && "violations" in err;
}

/** The Connect error for a failure (Connect, gRPC, gRPC-Web): code, retry-after metadata, google.rpc details. */
export function toConnectError(err: unknown, logger: Logger): ConnectError {
  if (err instanceof ConnectError && !(err.cause instanceof DomainError || err.cause instanceof TransportError) && connectRaised(err.code)) {
    return err;
  }
  const f = toFailure(err, logger);
  const row = ERROR_MAP[f.reason];
  const metadata = new Headers();
  if (f.retryAfterSeconds !== undefined) metadata.set("retry-after", String(f.retryAfterSeconds));
  const details = [
    { desc: ErrorInfoSchema, value: create(ErrorInfoSchema, { reason: row.stytch, domain: "otp.v1" }) },
    ...(f.retryAfterSeconds === undefined
      ? []
      : [{ desc: RetryInfoSchema, value: create(RetryInfoSchema, { retryDelay: durationFromMs(f.retryAfterSeconds * 1000) }) }]),
    ...(f.violations.length === 0
      ? []
      : [
          {
            desc: BadRequestSchema,
            value: create(BadRequestSchema, {
              fieldViolations: f.violations.map((v) =>
                create(BadRequest_FieldViolationSchema, { field: v.field, description: `${v.field} ${v.description}` }),
              ),
            }),
          },
        ]),
  ];
  const message = f.violations.length > 0 ? describeViolations(f.violations) : f.message;
  const make = () => new ConnectError(message, row.code, metadata, details, err);
  // An expected answer needs no record of where it was built; an internal failure keeps one.
  return f.reason === "internal" ? make() : withoutStackTrace(make);
}

/**
 * A failure on an RPC path answered before connect-es runs (a send refused at
 * the door): gRPC and gRPC-Web trailers-only, else Connect's JSON error body,
 * each by connect-es's own serialisers.
 */
export function writeRpcError(req: NodeRequest, res: NodeResponse, err: unknown, logger: Logger): void {
  const error = toConnectError(err, logger);
  const r = res as import("node:http").ServerResponse;
  const contentType = String(req.headers["content-type"] ?? "");
  const grpc = contentType.startsWith("application/grpc");
  const headers = headerRecord(grpc ? setTrailerStatus(new Headers(), error) : error.metadata, {
    "content-type": grpc ? contentType.split(";")[0]! : "application/json",
  });
  const body = grpc ? undefined : errorToJsonBytes(error, {});
  if (body) headers["content-length"] = String(body.byteLength);
  r.writeHead(grpc ? 200 : codeToHttpStatus(error.code), headers);
  r.end(body);
}

/** "email is required; expiration_minutes must be between 1 and 10": proto field paths. */
function describeViolations(violations: readonly FieldViolation[]): string {
  return violations.map((v) => `${v.field} ${v.description}`).join("; ");
}

/**
 * A proto field path in the JSON names of a request message: "business_id"
 * → "businessId", "branding.sender_name" → "branding.senderName". A part the
 * message does not have (an unknown key a caller sent) stays as it is.
 */
export function jsonPath(request: DescMessage | undefined, path: string): string {
  let message = request;
  return path
    .split(".")
    .map((part) => {
      const field = message?.fields.find((f) => f.name === part);
      message = field?.fieldKind === "message" ? field.message : undefined;
      return field?.jsonName ?? part;
    })
    .join(".");
}

/**
 * connect-es reads the request message before any interceptor runs, and
 * classifies one it cannot parse or decompress as "internal" (as gRPC does).
 * That is the caller's bad input: before such an answer leaves, it is
 * rewritten as the table's invalid_argument row, in the protocol it was
 * written in — a Connect body (HTTP 500 → 400), gRPC headers or trailers,
 * or gRPC-Web's trailer frame. Every other answer passes as written, but
 * for a gRPC status message too long to send, which is cut.
 */
export function connectAnswersReadable(res: NodeResponse, grpc: boolean): void {
  connectUnreadableIsInvalid(res);
  if (grpc) grpcUnreadableIsInvalid(res);
}

/**
 * The longest grpc-message sent, percent-encoded. A message may quote what
 * the caller sent (an unknown name, a JSON key); encoded whole it can pass
 * the 64 KB HTTP/2 allows a header, and the stream is then reset where the
 * caller should have had its status.
 */
const MAX_GRPC_MESSAGE = 1_024;

const ELLIPSIS = encodeURIComponent("…");

/**
 * `encoded` (percent-encoded UTF-8) cut to at most `max` characters and
 * marked as cut: never inside a %XX escape, nor between the bytes of one
 * character (a continuation byte is %80 to %BF), so it still decodes.
 */
export function cutEncoded(encoded: string, max: number): string {
  let end = max - ELLIPSIS.length;
  const lastEscape = encoded.lastIndexOf("%", end - 1);
  if (lastEscape >= 0 && lastEscape > end - 3) end = lastEscape;
  while (end >= 3 && /^%[89ab]/i.test(encoded.slice(end, end + 2))) end -= 3;
  return `${encoded.slice(0, end)}${ELLIPSIS}`;
}

const UNREADABLE = /^(parse binary:|decompression failed)/;
const INVALID = ERROR_MAP.invalid_argument;

/** The invalid_argument failure for an unreadable message, or undefined for any other one. */
function unreadable(code: string, message: string): Failure | undefined {
  if (code !== connectCodeName(ERROR_MAP.internal.code) && code !== String(ERROR_MAP.internal.code)) return undefined;
  return UNREADABLE.test(message) ? failure("invalid_argument", `The request message cannot be read (${message})`) : undefined;
}

/**
 * gRPC's status is in headers (trailers-only), HTTP/2 trailers, or gRPC-Web's
 * trailer frame (flag 0x80) at the end of the body. In headers and trailers a
 * grpc-message too long to send is cut here too (MAX_GRPC_MESSAGE).
 */
function grpcUnreadableIsInvalid(res: NodeResponse): void {
  const r = res as import("node:http").ServerResponse;
  const rewrite = (headers: Record<string, unknown> | undefined) => {
    if (!headers) return;
    const f = unreadable(String(headers["grpc-status"]), decodedOrEmpty(headers["grpc-message"]));
    if (f) {
      headers["grpc-status"] = String(INVALID.code);
      headers["grpc-message"] = encodeURIComponent(f.message);
    }
    const message = headers["grpc-message"];
    if (typeof message === "string" && message.length > MAX_GRPC_MESSAGE) headers["grpc-message"] = cutEncoded(message, MAX_GRPC_MESSAGE);
  };
  const writeHead = r.writeHead.bind(r) as (...a: unknown[]) => unknown;
  r.writeHead = ((...args: unknown[]) => {
    rewrite(args.find((a, i) => i > 0 && a !== null && typeof a === "object") as Record<string, unknown> | undefined);
    return writeHead(...args);
  }) as typeof r.writeHead;
  const addTrailers = r.addTrailers.bind(r);
  r.addTrailers = (headers) => {
    rewrite(headers as Record<string, unknown>);
    addTrailers(headers);
  };
  // gRPC-Web: an uncompressed trailer frame written as one chunk.
  const write = r.write.bind(r) as (...a: unknown[]) => boolean;
  r.write = ((chunk: unknown, ...rest: unknown[]) => {
    if (chunk instanceof Uint8Array && chunk.length >= 5 && chunk[0] === 0x80) {
      const text = Buffer.from(chunk.subarray(5)).toString("latin1");
      const status = /^grpc-status:\s*(\d+)\r?$/im.exec(text)?.[1];
      const f = unreadable(String(status), decodedOrEmpty(/^grpc-message:\s*(.*?)\r?$/im.exec(text)?.[1]));
      if (f) {
        const lines = text
          .split("\r\n")
          .filter((line) => line !== "" && !/^grpc-(status|message):/i.test(line))
          .concat([`grpc-status: ${INVALID.code}`, `grpc-message: ${encodeURIComponent(f.message)}`]);
        const body = Buffer.from(`${lines.join("\r\n")}\r\n`, "latin1");
        const head = Buffer.alloc(5);
        head.writeUInt8(0x80, 0);
        head.writeUInt32BE(body.length, 1);
        return write(Buffer.concat([head, body]), ...rest);
      }
    }
    return write(chunk, ...rest);
  }) as typeof r.write;
}

/** A grpc-message as sent (percent-encoded); "" when it is not valid encoding (then it is left alone). */
function decodedOrEmpty(message: unknown): string {
  try {
    return decodeURIComponent(String(message ?? ""));
  } catch {
    return "";
  }
}

/** The Connect protocol's side: an HTTP 500 is held until its body shows whether it is an unreadable message. */
function connectUnreadableIsInvalid(res: NodeResponse): void {
  const r = res as import("node:http").ServerResponse;
  const writeHead = r.writeHead.bind(r) as (...a: unknown[]) => unknown;
  const write = r.write.bind(r) as (...a: unknown[]) => boolean;
  const end = r.end.bind(r) as (...a: unknown[]) => unknown;
  let held: { headers: Record<string, string>; chunks: Buffer[] } | undefined;
  const chunkOf = (c: unknown) => (c instanceof Uint8Array || typeof c === "string" ? Buffer.from(c) : undefined);
  r.writeHead = ((...args: unknown[]) => {
    if (args[0] !== ERROR_MAP.internal.http) return writeHead(...args);
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
    let status = ERROR_MAP.internal.http;
    try {
      const parsed = JSON.parse(body) as { code?: string; message?: string };
      const f = unreadable(String(parsed.code), parsed.message ?? "");
      if (f) {
        status = INVALID.http;
        body = JSON.stringify(BODIES.plain(f, { requestId: "", request: undefined }));
      }
    } catch {
      // Not a Connect error body: leave it as it is.
    }
    writeHead(status, { ...held.headers, "content-length": String(Buffer.byteLength(body)) });
    return end(body);
  }) as typeof r.end;
}
