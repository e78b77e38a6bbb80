// Which address a request comes from. Behind reverse proxies the socket's
// peer is the nearest proxy, and X-Forwarded-For holds the chain: each proxy
// appends the address it received the request from, so the entries are
// written right to left by ever less trusted parties and the leftmost ones by
// the client itself. The client's address is therefore read from the right:
// skip the proxies we trust, and take the first address we do not (or, by
// hop count, the one the outermost trusted proxy appended). A client can add
// entries on the left but cannot change what a trusted proxy appended, so it
// cannot choose its rate-limit key.
import ipaddr from "ipaddr.js";
import type { TrustProxy } from "../config.js";

/** The client address of a request: its socket peer and X-Forwarded-For header(s). */
export type ClientAddressOf = (socketAddress: string | undefined, forwardedFor: string | string[] | undefined) => string | undefined;

export function clientAddressResolver(trust: TrustProxy): ClientAddressOf {
  if (trust.kind === "none") return (socketAddress) => normalize(socketAddress);
  const networks = trust.kind === "networks" ? trust.networks.map((cidr) => ipaddr.parseCIDR(cidr)) : [];
  const trusted = (address: Address, hop: number) =>
    trust.kind === "hops" ? hop < trust.hops : networks.some((range) => address.kind() === range[0].kind() && address.match(range));
  return (socketAddress, forwardedFor) => {
    const peer = parse(socketAddress);
    if (!peer) return normalize(socketAddress);
    // Nearest first: the socket's peer, then X-Forwarded-For right to left.
    const chain = [socketAddress!, ...entries(forwardedFor).reverse()];
    let client = peer;
    for (let hop = 0; hop < chain.length; hop++) {
      const address = hop === 0 ? peer : parse(chain[hop]);
      // Something that is not an address: the client wrote it, or a proxy
      // is misconfigured. Either way the nearest real address stands.
      if (!address) break;
      client = address;
      if (!trusted(address, hop)) break;
    }
    return client.toString();
  };
}

/**
 * Whether a socket peer is one of the trusted proxies: with a hop count any
 * peer is (the service is reachable only through them), with networks a
 * peer inside them.
 */
export function trustedProxyTest(trust: TrustProxy): (address: string) => boolean {
  if (trust.kind === "none") return () => false;
  if (trust.kind === "hops") return () => trust.hops > 0;
  const networks = trust.networks.map((cidr) => ipaddr.parseCIDR(cidr));
  return (raw) => {
    const address = parse(raw);
    return address !== undefined && networks.some((range) => address.kind() === range[0].kind() && address.match(range));
  };
}

function entries(header: string | string[] | undefined): string[] {
  if (header === undefined) return [];
  const joined = Array.isArray(header) ? header.join(",") : header;
  return joined.split(",").map((e) => e.trim()).filter((e) => e !== "");
}

type Address = ipaddr.IPv4 | ipaddr.IPv6;

/** Longer strings are parsed every time: "[v6 with a zone]:port" fits in this. */
const MEMO_MAX_LENGTH = 64;
/** At this many the memo starts over. */
const MEMO_LIMIT = 4096;
/**
 * Recent parses, by the raw string: every request on a connection carries
 * its peer's address (behind proxies, the same few chains), and ipaddr.js's
 * checks and parse cost 5-8 µs a request (bench/client-address-micro.ts),
 * about a tenth of a refusal at the door. Only short strings are kept, and
 * the memo starts over when full, so a stranger sending junk headers cannot
 * grow it. Nothing here mutates an address it is handed.
 */
const memo = new Map<string, Address | null>();

/** An address as proxies write it: bare, "[v6]:port" or "v4:port"; IPv4-mapped IPv6 as IPv4. */
function parse(raw: string | undefined): Address | undefined {
  if (raw === undefined) return undefined;
  if (raw.length > MEMO_MAX_LENGTH) return parseText(raw);
  let address = memo.get(raw);
  if (address === undefined) {
    address = parseText(raw) ?? null;
    if (memo.size >= MEMO_LIMIT) memo.clear();
    memo.set(raw, address);
  }
  return address ?? undefined;
}

function parseText(raw: string): Address | undefined {
  let text = raw.trim();
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(text);
  if (bracketed) text = bracketed[1]!;
  else if (/^\d{1,3}(\.\d{1,3}){3}:\d+$/.test(text)) text = text.slice(0, text.lastIndexOf(":"));
  if (text.includes("%")) text = text.slice(0, text.indexOf("%"));
  if (!ipaddr.isValid(text)) return undefined;
  // isValid accepts shorthand IPv4 forms ("10.1"); proxies write four parts.
  if (!text.includes(":") && !ipaddr.IPv4.isValidFourPartDecimal(text)) return undefined;
  return ipaddr.process(text);
}

function normalize(socketAddress: string | undefined): string | undefined {
  return parse(socketAddress)?.toString() ?? socketAddress;
}
