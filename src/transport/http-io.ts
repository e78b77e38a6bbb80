// The request and response types of both HTTP versions the port serves, and
// the one JSON writer every JSON answer (success or error) goes out through.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";

export type NodeRequest = IncomingMessage | Http2ServerRequest;
export type NodeResponse = ServerResponse | Http2ServerResponse;

export function writeJson(res: NodeResponse, status: number, body: unknown): void {
  const payload = JSON.stringify(body);
  if (res.headersSent) return;
  (res as ServerResponse).writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(payload),
    "cache-control": "no-store",
  });
  res.end(payload);
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
