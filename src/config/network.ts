// Settings about who is on the other end: trusted proxies and browser origins.
import ipaddr from "ipaddr.js";
import { ConfigError } from "./config-error.js";
import type { TrustProxy } from "./types.js";

/**
 * TRUST_PROXY: false (the default), true (one proxy), a number of proxy hops,
 * or a comma-separated list of the proxies' addresses or networks (CIDRs).
 */
export function parseTrustProxy(raw: string | undefined): TrustProxy {
  if (raw === undefined || /^(0|false|no|off)$/i.test(raw)) return { kind: "none" };
  // One proxy in front, which appends the address it saw: the usual load balancer.
  if (/^(true|yes|on)$/i.test(raw)) return { kind: "hops", hops: 1 };
  if (/^\d+$/.test(raw)) {
    const hops = Number(raw);
    if (hops > 10) throw new ConfigError(`TRUST_PROXY: ${hops} proxy hops is more than any real chain (at most 10)`);
    return { kind: "hops", hops };
  }
  const networks = raw.split(",").map((entry) => {
    const text = entry.trim();
    try {
      if (text.includes("/")) {
        const [address, bits] = ipaddr.parseCIDR(text);
        return `${address.toString()}/${bits}`;
      }
      const address = ipaddr.parse(text);
      return `${address.toString()}/${address.kind() === "ipv4" ? 32 : 128}`;
    } catch {
      throw new ConfigError(
        `TRUST_PROXY: "${text}" is not an address or network; use false, true (one proxy), a number of proxy hops, or addresses/CIDRs like 10.0.0.0/8,fd00::/8`,
      );
    }
  });
  return { kind: "networks", networks };
}

export function parseOrigins(raw: string | undefined): string[] {
  if (raw === undefined) return [];
  return raw.split(",").map((entry) => {
    const origin = entry.trim();
    if (origin === "*") return origin;
    let url: URL;
    try {
      url = new URL(origin);
    } catch {
      throw new ConfigError(`ALLOWED_ORIGINS: "${origin}" is not an origin like https://app.example.com`);
    }
    if (url.origin !== origin || !/^https?:$/.test(url.protocol)) {
      throw new ConfigError(`ALLOWED_ORIGINS: "${origin}" is not an origin like https://app.example.com (no path, no trailing slash)`);
    }
    return origin;
  });
}
