// Which limits a send is charged against, and how the tenant limit is split
// over shards so a tenant's sends do not all wait on one row lock.
import { describe, expect, it } from "vitest";
import { chargesForSend, guessCharges, limitName, tenantCharge, tenantShardCount } from "../../src/domain/rate-limit-policy.js";
import { Secrets } from "../../src/domain/secrets.js";

const secrets = new Secrets({ id: 1, secret: "policy-pepper-0123456789abcdef0123456789" });
const limits = {
  email: { burst: 3, periodMs: 20_000 },
  ip: { burst: 30, periodMs: 2_000 },
  tenant: { burst: 1000, periodMs: 10 },
  tenantShards: 16,
  emailDaily: { burst: 20, periodMs: 4_320_000 },
};

describe("chargesForSend", () => {
  it("charges the tenant's shard, the address (short-term and daily) and the IP, keyed by hashes only", () => {
    const charges = chargesForSend(limits, secrets, "42", "jane@example.com", "203.0.113.9");
    expect(charges.map((c) => limitName(c.key))).toEqual(["tenant", "email", "email_daily", "ip"]);
    expect(charges[0]).toEqual({ key: expect.stringMatching(/^t:42:\d+$/), burst: 63, periodMs: 160 });
    expect(charges[1]).toEqual({ key: expect.stringMatching(/^e:42:[\w-]{22}$/), burst: 3, periodMs: 20_000 });
    expect(charges[2]).toEqual({ key: expect.stringMatching(/^d:42:[\w-]{22}$/), burst: 20, periodMs: 4_320_000 });
    expect(charges[3]).toEqual({ key: expect.stringMatching(/^i:42:[\w-]{22}$/), burst: 30, periodMs: 2_000 });
    expect(JSON.stringify(charges)).not.toContain("jane");
    expect(JSON.stringify(charges)).not.toContain("203.0.113.9");
  });

  it("charges every address of one IPv6 /64 to the same IP key (an attacker cannot rotate through its /64)", () => {
    const ipKey = (ip: string) => chargesForSend(limits, secrets, "42", "jane@example.com", ip)[3]!.key;
    expect(ipKey("2001:db8:1:2::1")).toBe(ipKey("2001:db8:1:2:ffff:ffff:ffff:fffe"));
    expect(ipKey("2001:db8:1:2::1")).not.toBe(ipKey("2001:db8:1:3::1"));
    expect(ipKey("203.0.113.9")).not.toBe(ipKey("203.0.113.10"));
  });

  it("charges every spelling of one mailbox to the same address keys and shard, and other mailboxes apart", () => {
    const keys = (email: string) => chargesForSend(limits, secrets, "42", email, undefined).map((c) => c.key);
    expect(keys("jane+1@example.com")).toEqual(keys("jane@example.com"));
    expect(keys("ja.ne+x@googlemail.com")).toEqual(keys("jane@gmail.com"));
    expect(keys("john@example.com")[1]).not.toBe(keys("jane@example.com")[1]);
    expect(keys("ja.ne@example.com")[1]).not.toBe(keys("jane@example.com")[1]);
  });

  it("charges an IPv6 client's /48 too, with 16 clients' worth of the IP limit, shared by the site's /64s", () => {
    const charges = chargesForSend(limits, secrets, "42", "jane@example.com", "2001:db8:1:2::1");
    expect(charges.map((c) => limitName(c.key))).toEqual(["tenant", "email", "email_daily", "ip", "ip_site"]);
    expect(charges[4]).toEqual({ key: expect.stringMatching(/^s:42:[\w-]{22}$/), burst: 480, periodMs: 125 });
    const siteOf = (ip: string) => chargesForSend(limits, secrets, "42", "jane@example.com", ip)[4]?.key;
    expect(siteOf("2001:db8:1:ffff::1")).toBe(charges[4]!.key);
    expect(siteOf("2001:db8:2::1")).not.toBe(charges[4]!.key);
    expect(siteOf("203.0.113.9")).toBeUndefined();
    expect(JSON.stringify(charges)).not.toContain("2001");
  });

  it("leaves the IP out when it is not known", () => {
    expect(chargesForSend(limits, secrets, "42", "jane@example.com", undefined)).toHaveLength(3);
  });


  it("puts an address on the same shard every time, and spreads addresses over all shards", () => {
    const shardOf = (address: string) => chargesForSend(limits, secrets, "42", address, undefined)[0]!.key;
    expect(shardOf("jane@example.com")).toBe(shardOf("jane@example.com"));
    const counts = new Map<string, number>();
    for (let i = 0; i < 16_000; i++) {
      const key = shardOf(`user${i}@example.com`);
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    expect(counts.size).toBe(16);
    // 1000 expected per shard; a uniform hash stays well within ±15%.
    for (const n of counts.values()) expect(Math.abs(n - 1000)).toBeLessThan(150);
  });
});

describe("tenantCharge", () => {
  it("gives each shard its share of the burst and of the rate", () => {
    const c = tenantCharge("7", { burst: 1000, periodMs: 10 }, 16, "AAAA");
    expect(c).toEqual({ key: "t:7:0", burst: 63, periodMs: 160 });
    // 16 shards × 63 ≈ the burst; 16 shards, one send each per 160 ms = 100/s.
  });

  it("uses one row when sharding is off", () => {
    expect(tenantCharge("7", { burst: 1000, periodMs: 10 }, 1, "AAAA")).toEqual({ key: "t:7", burst: 1000, periodMs: 10 });
  });

  it("never uses more shards than the burst allows sends", () => {
    expect(tenantShardCount({ burst: 4, periodMs: 10 }, 16)).toBe(4);
    expect(tenantCharge("7", { burst: 4, periodMs: 10 }, 16, "AAAB")).toEqual({ key: "t:7:1", burst: 1, periodMs: 40 });
    expect(tenantShardCount({ burst: 1, periodMs: 10 }, 16)).toBe(1);
  });
});

describe("guessCharges", () => {
  const limit = { burst: 100, periodMs: 36_000 };

  it("is one row per scope and client network, whatever address is checked", () => {
    const [a] = guessCharges(limit, secrets, "legacy", "203.0.113.9");
    expect(guessCharges(limit, secrets, "legacy", "203.0.113.9")).toHaveLength(1);
    expect(a).toEqual({ key: expect.stringMatching(/^g:legacy:[\w-]{22}$/), burst: 100, periodMs: 36_000 });
    expect(guessCharges(limit, secrets, "p7", "203.0.113.9")[0]!.key).not.toBe(a!.key);
    expect(limitName(a!.key)).toBe("guess");
    expect(a!.key).not.toContain("203.0.113.9");
  });

  it("adds an IPv6 client's /48, with 16 clients' worth of the budget, shared by the site's /64s", () => {
    const [client, site] = guessCharges(limit, secrets, "legacy", "2001:db8:1:2::1");
    expect(site).toEqual({ key: expect.stringMatching(/^h:legacy:[\w-]{22}$/), burst: 1_600, periodMs: 2_250 });
    expect(limitName(site!.key)).toBe("guess_site");
    const other64 = guessCharges(limit, secrets, "legacy", "2001:db8:1:3::1");
    expect(other64[0]!.key).not.toBe(client!.key);
    expect(other64[1]!.key).toBe(site!.key);
    expect(guessCharges(limit, secrets, "legacy", "2001:db8:2:2::1")[1]!.key).not.toBe(site!.key);
    expect(JSON.stringify([client, site])).not.toContain("2001");
  });
});
