// Which rate limits a send is charged against. Each limit is a GCRA bucket
// stored as one row per key; the store charges them all or none, atomically.
import { clientKey, siteKey } from "./client-key.js";
import { mailboxOf } from "./mailbox.js";
import type { Secrets } from "./secrets.js";

/** A GCRA limit: `burst` requests at once, then one more every `periodMs`. */
export interface RateLimit {
  readonly burst: number;
  readonly periodMs: number;
}

export interface LimitCharge {
  readonly key: string;
  readonly burst: number;
  readonly periodMs: number;
}

export interface SendLimits {
  readonly email: RateLimit;
  readonly ip: RateLimit;
  readonly tenant: RateLimit;
  /** How many rows the tenant limit is split over (see tenantShard). */
  readonly tenantShards: number;
  /** The daily cap per tenant+mailbox. */
  readonly emailDaily: RateLimit;
}

/**
 * Per tenant+mailbox (a short-term limit and a daily cap; see mailboxOf),
 * per tenant+client network (when a client is known; see clientKey), per
 * tenant+IPv6 site (siteShare of the client limit; see siteKey) and per
 * tenant.
 * Addresses and IPs enter keys only as keyed hashes. Every charge depends
 * only on the address given, never on whether it exists, so a legacy
 * caller is limited alike for a customer and a stranger.
 *
 * The tenant limit is the one every send of a tenant is charged against, so
 * as a single row its lock would be held by one send at a time until that
 * send commits, and a tenant's sends would commit one by one. It is split
 * into `shards` rows instead, each with its share of the burst and of the
 * rate; an address always lands on the same shard. Together they allow the
 * tenant's burst and rate, give or take how evenly addresses spread.
 */
export function chargesForSend(
  limits: SendLimits,
  secrets: Secrets,
  tenantId: string,
  address: string,
  ip: string | undefined,
  /** clientLimitKeys(secrets, tenantId, ip), when the caller has them already. */
  clientKeys: ClientLimitKeys | undefined = ip === undefined ? undefined : clientLimitKeys(secrets, tenantId, ip),
): LimitCharge[] {
  // Every spelling of one mailbox (a+1@, a+2@) spends the same budget.
  const addressKey = secrets.limitKey(mailboxOf(address));
  const charges: LimitCharge[] = [
    tenantCharge(tenantId, limits.tenant, limits.tenantShards, addressKey),
    { key: `e:${tenantId}:${addressKey}`, ...limits.email },
    { key: `d:${tenantId}:${addressKey}`, ...limits.emailDaily },
  ];
  if (clientKeys !== undefined) {
    charges.push({ key: clientKeys.ip, ...limits.ip });
    if (clientKeys.site !== undefined) charges.push({ key: clientKeys.site, ...siteShare(limits.ip) });
  }
  return charges;
}

/** The keys of a client's send limits in a tenant: its network's, and its IPv6 site's (never in clear). */
export interface ClientLimitKeys {
  readonly ip: string;
  readonly site: string | undefined;
}

export function clientLimitKeys(secrets: Secrets, tenantId: string, ip: string): ClientLimitKeys {
  const site = siteKey(ip);
  return { ip: ipLimitKey(secrets, tenantId, ip), site: site === undefined ? undefined : `s:${tenantId}:${secrets.limitKey(site)}` };
}

/**
 * How many clients' worth of a budget one IPv6 /48 gets in all. A site
 * (a company, a campus) with many users behind their own /64s shares it; an
 * attacker holding a /48 gets 16 clients' budgets, not 65,536.
 */
export const SITE_SHARE = 16;

/** A client budget scaled to a site: SITE_SHARE times the burst and the rate. */
export function siteShare(limit: RateLimit): RateLimit {
  return { burst: limit.burst * SITE_SHARE, periodMs: Math.max(1, Math.round(limit.periodMs / SITE_SHARE)) };
}

/** The key of a client's send limit in a tenant (its network, never in clear). */
export function ipLimitKey(secrets: Secrets, tenantId: string, ip: string): string {
  return `i:${tenantId}:${secrets.limitKey(clientKey(ip))}`;
}

/**
 * The guessing budget's rows for a client: failed passcode checks by one
 * client network, and for an IPv6 client also by its /48 (siteShare of the
 * budget). `scope` is where the client's address comes from: the legacy
 * routes see the browser itself, so one budget spans every business
 * ("legacy"); a Stytch caller reports its end user's address (or is itself
 * the client), so the budget is per project, and one project's caller cannot
 * spend another's.
 */
export function guessCharges(limit: RateLimit, secrets: Secrets, scope: string, ip: string | undefined): LimitCharge[] {
  const charges: LimitCharge[] = [{ key: `g:${scope}:${secrets.limitKey(ip === undefined ? "unknown" : clientKey(ip))}`, ...limit }];
  const site = ip === undefined ? undefined : siteKey(ip);
  if (site !== undefined) charges.push({ key: `h:${scope}:${secrets.limitKey(site)}`, ...siteShare(limit) });
  return charges;
}

/** The tenant limit's shard for an address (given as its keyed hash). */
export function tenantCharge(tenantId: string, limit: RateLimit, shards: number, addressKey: string): LimitCharge {
  const n = tenantShardCount(limit, shards);
  if (n === 1) return { key: `t:${tenantId}`, ...limit };
  return {
    key: `t:${tenantId}:${shardOf(addressKey, n)}`,
    burst: Math.ceil(limit.burst / n),
    periodMs: limit.periodMs * n,
  };
}

/** Shards in use: never more than the burst, so each allows at least one send. */
export function tenantShardCount(limit: RateLimit, shards: number): number {
  return Math.max(1, Math.min(shards, limit.burst));
}

/** A stable shard number from a keyed hash (already uniformly distributed). */
function shardOf(hash: string, shards: number): number {
  // Four base64url characters are three bytes of the hash.
  return Buffer.from(hash.slice(0, 4), "base64url").readUIntBE(0, 3) % shards;
}

/** Which limit a key belongs to, for error details and metrics. */
export function limitName(key: string): "tenant" | "email" | "email_daily" | "ip" | "ip_site" | "guess" | "guess_site" {
  const names = { t: "tenant", i: "ip", s: "ip_site", d: "email_daily", g: "guess", h: "guess_site" } as const;
  return names[key[0] as keyof typeof names] ?? "email";
}
