// The request and response types of both HTTP versions the port serves, the
// one JSON writer every JSON answer (success or error) goes out through, and
// the one reader of request bodies (REST and the RPC adapter).
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";

export type NodeRequest = IncomingMessage | Http2ServerRequest;
export type NodeResponse = ServerResponse | Http2ServerResponse;

export function writeJson(res: NodeResponse, status: number, body: unknown): void {
  const payload = JSON.stringify(body);
  if (res.headersSent) return;
  writeWhole(
    res,
    status,
    { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(payload), "cache-control": "no-store" },
    payload,
  );
}

/**
 * A whole answer (status, headers, body) written at once. Over HTTP/2 it goes
 * out through the stream itself: node's compatibility response always asks
 * for trailers, so its end() sends the body in one DATA frame and then an
 * empty one to end the stream, in a second write; here the body's frame ends
 * the stream, and the answer leaves in one write. The response object still
 * reports the status, its headers set earlier (setHeader) go out too, and it
 * still emits "finish" and "close" when the stream closes. Every JSON answer
 * (writeJson) and the unary shortcut's Connect answers are written here.
 */
export function writeWhole(res: NodeResponse, status: number, headers: OutgoingHttpHeaders, body: Uint8Array | string): void {
  if (!("stream" in res)) {
    res.writeHead(status, headers);
    res.end(body);
    return;
  }
  const stream = res.stream;
  if (stream.destroyed || stream.headersSent) return;
  res.statusCode = status;
  stream.respond({ ...res.getHeaders(), ...headers, ":status": status }, { endStream: body.length === 0 });
  if (body.length > 0) stream.end(body);
}

/** The request's headers as fetch Headers, for a handler context: pseudo-headers (HTTP/2's ":path" and the like) left out. */
export function requestHeaders(req: NodeRequest): Headers {
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

/** fetch Headers as the plain record node's writeHead takes, added to `into`. */
export function headerRecord(headers: Headers, into: Record<string, string> = {}): Record<string, string> {
  headers.forEach((value, key) => {
    into[key] = value;
  });
  return into;
}

/** A request body as read: the chunks kept, and the body's whole length. */
export interface RequestBody {
  readonly chunks: Buffer[];
  readonly length: number;
}

/** A body's bytes as one buffer (the chunk itself when it came in one). */
export function bodyBytes(body: RequestBody): Buffer {
  return body.chunks.length === 1 ? body.chunks[0]! : Buffer.concat(body.chunks, body.length);
}

/**
 * Reads a request body with the stream's events (an async iterator over the
 * request, with its generator, promises and end-of-stream listeners, cost a
 * send more than the read itself). Chunks are kept up to and including the
 * one that takes the body past `max`; the rest is read and dropped. The read
 * settles at the body's end or, with `settleOverMax`, as soon as the body is
 * past `max`. It fails when the request errs or closes before its end.
 */
export function readRequestBody(req: NodeRequest, max: number, settleOverMax = false): Promise<RequestBody> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const settle = () => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
      req.off("close", onClose);
    };
    const onData = (chunk: Buffer) => {
      if (length <= max) chunks.push(chunk);
      length += chunk.length;
      if (settleOverMax && length > max) {
        settle();
        req.resume();
        resolve({ chunks, length });
      }
    };
    const onEnd = () => {
      settle();
      resolve({ chunks, length });
    };
    const onError = (err: Error) => {
      settle();
      reject(err);
    };
    // Closed before its end without an error (an HTTP/2 stream reset, say): cut off all the same.
    const onClose = () => {
      settle();
      reject(Object.assign(new Error("the request body was cut off"), { code: "ERR_STREAM_PREMATURE_CLOSE" }));
    };
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
    req.on("close", onClose);
  });
}
