// The one check of a bearer token (the admin API's ADMIN_TOKEN, /metrics'
// METRICS_TOKEN): "Bearer" in any case (RFC 7235 schemes are
// case-insensitive), one or more spaces, the token; compared as SHA-256
// digests so the comparison is constant-time whatever the lengths.
import { createHash, timingSafeEqual } from "node:crypto";

export type BearerCheck = (authorization: string | undefined) => boolean;

/** A check that accepts exactly `token` presented as a bearer token. */
export function bearerCheck(token: string): BearerCheck {
  const expected = digest(token);
  return (authorization) => {
    const presented = /^Bearer[ ]+(\S+)$/i.exec(authorization ?? "")?.[1];
    return presented !== undefined && timingSafeEqual(digest(presented), expected);
  };
}

function digest(token: string): Buffer {
  return createHash("sha256").update(token).digest();
}
