// Which rate limits a send is charged against. Each limit is a GCRA bucket
// stored as one row per key; the store charges them all or none, atomically.
import type { RateLimit } from "../config.js";
import type { Secrets } from "./secrets.js";

export interface LimitCharge {
  readonly key: string;
  readonly burst: number;
  readonly periodMs: number;
}

export interface SendLimits {
  readonly email: RateLimit;
  readonly ip: RateLimit;
  readonly tenant: RateLimit;
}

/**
 * Per tenant+address, per tenant+client IP (when one is known) and per
 * tenant. Addresses and IPs enter keys only as keyed hashes.
 */
export function chargesForSend(
  limits: SendLimits,
  secrets: Secrets,
  tenantId: string,
  address: string,
  ip: string | undefined,
): LimitCharge[] {
  const charges: LimitCharge[] = [
    { key: `t:${tenantId}`, ...limits.tenant },
    { key: `e:${tenantId}:${secrets.limitKey(address)}`, ...limits.email },
  ];
  if (ip) charges.push({ key: `i:${tenantId}:${secrets.limitKey(ip)}`, ...limits.ip });
  return charges;
}

/** Which limit a key belongs to, for error details and metrics. */
export function limitName(key: string): "tenant" | "email" | "ip" {
  return key.startsWith("t:") ? "tenant" : key.startsWith("i:") ? "ip" : "email";
}
