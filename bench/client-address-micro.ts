// Naming the caller on its own: the client address of a request, as every
// request (sends, refusals at the door, health checks) resolves it, for the
// shapes TRUST_PROXY gives. CPU per request, no I/O; each shape sees the
// same peer again and again, as the requests of one connection do.
// Run: `npx tsx bench/client-address-micro.ts` (ADDRESS_CALLS, ADDRESS_ROUNDS).
import { clientAddressResolver } from "../src/transport/client-address.js";

const calls = Number(process.env.ADDRESS_CALLS ?? 200_000);
const rounds = Number(process.env.ADDRESS_ROUNDS ?? 3);

const shapes = {
  "no proxy, IPv4-mapped peer": () => {
    const of = clientAddressResolver({ kind: "none" });
    return () => of("::ffff:127.0.0.1", undefined);
  },
  "one proxy hop": () => {
    const of = clientAddressResolver({ kind: "hops", hops: 1 });
    return () => of("10.0.0.2", "1.2.3.4, 198.51.100.7");
  },
  "trusted networks": () => {
    const of = clientAddressResolver({ kind: "networks", networks: ["10.0.0.0/8", "fd00::/8"] });
    return () => of("10.0.0.2", "6.6.6.6, 198.51.100.7, 10.9.9.9");
  },
};

for (let round = 1; round <= rounds; round++) {
  for (const [name, make] of Object.entries(shapes)) {
    const call = make();
    const start = process.cpuUsage();
    for (let i = 0; i < calls; i++) call();
    const used = process.cpuUsage(start);
    console.log(`round ${round}  ${name.padEnd(28)} ${((used.user + used.system) / calls).toFixed(2)} µs per request`);
  }
}
