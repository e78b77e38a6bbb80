// The key a client's budgets are charged under: an IPv4 address, or an IPv6
// /64 (one host or home network can pick any of its 2^64 addresses); and the
// site an IPv6 client belongs to, its /48.
import { describe, expect, it } from "vitest";
import { clientKey, siteKey } from "../../src/domain/client-key.js";

describe("clientKey", () => {
  it("keeps an IPv4 address as it is", () => {
    expect(clientKey("203.0.113.9")).toBe("203.0.113.9");
    expect(clientKey(" 203.0.113.9 ")).toBe("203.0.113.9");
  });

  it("groups an IPv6 address by its /64", () => {
    expect(clientKey("2001:db8:1:2:aaaa:bbbb:cccc:dddd")).toBe("2001:db8:1:2::/64");
    expect(clientKey("2001:db8:1:2::1")).toBe("2001:db8:1:2::/64");
    expect(clientKey("2001:0db8:0001:0002:ffff:ffff:ffff:ffff")).toBe("2001:db8:1:2::/64");
  });

  it("tells apart two /64s that differ only in the fourth group", () => {
    expect(clientKey("2001:db8:1:2::1")).not.toBe(clientKey("2001:db8:1:3::1"));
  });

  it("counts an IPv4-mapped IPv6 address as its IPv4 address", () => {
    expect(clientKey("::ffff:203.0.113.9")).toBe("203.0.113.9");
  });

  it("ignores a zone id", () => {
    expect(clientKey("fe80::1:2:3:4%eth0")).toBe("fe80::/64");
  });

  it("returns anything else unchanged", () => {
    expect(clientKey("not-an-ip")).toBe("not-an-ip");
  });
});

describe("siteKey", () => {
  it("groups an IPv6 address by its /48, whatever its /64", () => {
    expect(siteKey("2001:db8:1:2::1")).toBe("2001:db8:1::/48");
    expect(siteKey("2001:db8:1:ffff:ffff:ffff:ffff:ffff")).toBe("2001:db8:1::/48");
    expect(siteKey("2001:db8:2::1")).toBe("2001:db8:2::/48");
    expect(siteKey("fe80::1:2:3:4%eth0")).toBe("fe80::/48");
  });

  it("has none for IPv4 (an IPv4-mapped address included) or what is not an address", () => {
    expect(siteKey("203.0.113.9")).toBeUndefined();
    expect(siteKey("::ffff:203.0.113.9")).toBeUndefined();
    expect(siteKey("not-an-ip")).toBeUndefined();
  });
});
