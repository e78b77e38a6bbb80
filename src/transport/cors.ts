// CORS for browser callers on other origins, with the header lists Connect
// publishes for its protocols (the `cors` constants of @connectrpc/connect).
// Only exact configured origins are echoed; "*" allows any origin and never
// allows credentials.
import { cors as connectCors } from "@connectrpc/connect";
import type { NodeRequest, NodeResponse } from "./rest.js";

const ALLOW_METHODS = [...new Set([...connectCors.allowedMethods, "GET", "POST", "PUT", "PATCH", "DELETE"])].join(", ");
const ALLOW_HEADERS = [...new Set([...connectCors.allowedHeaders, "Authorization"])].join(", ");
const EXPOSE_HEADERS = [...new Set([...connectCors.exposedHeaders, "Retry-After", "X-Request-Id"])].join(", ");

export interface Cors {
  /** Sets the CORS headers; true when the request was a preflight and is answered. */
  apply(req: NodeRequest, res: NodeResponse): boolean;
}

export function createCors(allowedOrigins: readonly string[]): Cors {
  const any = allowedOrigins.includes("*");
  const exact = new Set(allowedOrigins.filter((o) => o !== "*"));
  return {
    apply(req, res) {
      const origin = req.headers.origin;
      if (typeof origin !== "string" || (!any && !exact.has(origin))) return false;
      res.setHeader("access-control-allow-origin", exact.has(origin) ? origin : "*");
      res.setHeader("vary", "Origin");
      if (req.method === "OPTIONS" && req.headers["access-control-request-method"]) {
        res.setHeader("access-control-allow-methods", ALLOW_METHODS);
        res.setHeader("access-control-allow-headers", ALLOW_HEADERS);
        res.setHeader("access-control-max-age", "7200");
        (res as import("node:http").ServerResponse).writeHead(204);
        res.end();
        return true;
      }
      res.setHeader("access-control-expose-headers", EXPOSE_HEADERS);
      return false;
    },
  };
}
