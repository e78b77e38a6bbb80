// The key a client's budgets (sends per IP, failed checks per client) are
// charged under. An IPv4 address is one client. An IPv6 /64 is one client
// too: a single host or home network is routinely given a whole /64 and can
// pick any of its 2^64 addresses, so keying on the exact address would hand
// one attacker an unlimited number of budgets.
import ipaddr from "ipaddr.js";

/**
 * "203.0.113.9" → "203.0.113.9"; "2001:db8:1:2:aaaa::1" → "2001:db8:1:2::/64";
 * an IPv4-mapped IPv6 address ("::ffff:203.0.113.9") counts as its IPv4
 * address. Anything that is not an IP address is returned as it is (it is
 * still a key, just not one that can be grouped).
 */
export function clientKey(address: string): string {
  const text = address.trim();
  // A zone id (fe80::1%eth0) names the interface, not the host.
  const unzoned = text.includes("%") ? text.slice(0, text.indexOf("%")) : text;
  if (!ipaddr.isValid(unzoned)) return text;
  const ip = ipaddr.process(unzoned);
  if (ip.kind() === "ipv4") return ip.toString();
  const parts = (ip as ipaddr.IPv6).parts;
  return `${new ipaddr.IPv6([...parts.slice(0, 4), 0, 0, 0, 0]).toString()}/64`;
}
