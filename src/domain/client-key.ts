// The key a client's budgets (sends per IP, failed checks per client) are
// charged under. An IPv4 address is one client. An IPv6 /64 is one client
// too: a single host or home network is routinely given a whole /64 and can
// pick any of its 2^64 addresses, so keying on the exact address would hand
// one attacker an unlimited number of budgets. A site's /48 holds 65,536
// such clients, so it also has a budget of its own (siteKey).
import ipaddr from "ipaddr.js";

/**
 * "203.0.113.9" → "203.0.113.9"; "2001:db8:1:2:aaaa::1" → "2001:db8:1:2::/64";
 * an IPv4-mapped IPv6 address ("::ffff:203.0.113.9") counts as its IPv4
 * address. Anything that is not an IP address is returned as it is (it is
 * still a key, just not one that can be grouped).
 */
export function clientKey(address: string): string {
  const ip = parse(address);
  if (ip === undefined) return address.trim();
  return ip.kind() === "ipv4" ? ip.toString() : prefix(ip as ipaddr.IPv6, 4);
}

/**
 * The site a client belongs to, for budgets wider than one client: an IPv6
 * /48, the usual assignment to one customer or site, which an attacker given
 * one could otherwise spend as 65,536 client budgets. None for IPv4 (one
 * address is already scarce) or for what is not an address.
 * "2001:db8:1:2::1" → "2001:db8:1::/48".
 */
export function siteKey(address: string): string | undefined {
  // An IPv4 address, the common case, is known by its lack of colons, unparsed.
  if (!address.includes(":")) return undefined;
  const ip = parse(address);
  return ip === undefined || ip.kind() === "ipv4" ? undefined : prefix(ip as ipaddr.IPv6, 3);
}

function parse(address: string): ipaddr.IPv4 | ipaddr.IPv6 | undefined {
  const text = address.trim();
  // A zone id (fe80::1%eth0) names the interface, not the host.
  const unzoned = text.includes("%") ? text.slice(0, text.indexOf("%")) : text;
  return ipaddr.isValid(unzoned) ? ipaddr.process(unzoned) : undefined;
}

/** The network of the first `groups` 16-bit groups: 4 → "…/64", 3 → "…/48". */
function prefix(ip: ipaddr.IPv6, groups: number): string {
  const parts = [...ip.parts.slice(0, groups), ...new Array<number>(8 - groups).fill(0)];
  return `${new ipaddr.IPv6(parts).toString()}/${groups * 16}`;
}
