// TRUST_PROXY: the client address is read from the right of X-Forwarded-For
// (what the nearest trusted proxy appended), so whatever a client writes on
// the left cannot become its rate-limit key.
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config.js";
import { clientAddressResolver } from "../../src/transport/client-address.js";

const resolverFor = (TRUST_PROXY: string) => clientAddressResolver(loadConfig({ TRUST_PROXY }).trustProxy);

describe("TRUST_PROXY parsing", () => {
  it.each([
    ["false", { kind: "none" }],
    ["0", { kind: "none" }],
    ["true", { kind: "hops", hops: 1 }],
    ["1", { kind: "hops", hops: 1 }],
    ["2", { kind: "hops", hops: 2 }],
    ["10.0.0.0/8, 192.168.1.7", { kind: "networks", networks: ["10.0.0.0/8", "192.168.1.7/32"] }],
    ["fd00::/8,::1", { kind: "networks", networks: ["fd00::/8", "::1/128"] }],
  ])("%s", (value, expected) => {
    expect(loadConfig({ TRUST_PROXY: value }).trustProxy).toEqual(expected);
  });

  it("is off by default", () => {
    expect(loadConfig({}).trustProxy).toEqual({ kind: "none" });
  });

  it.each(["maybe", "10.0.0.0/33", "10.0.0.0/8,nope", "11"])("refuses %j naming TRUST_PROXY", (value) => {
    expect(() => loadConfig({ TRUST_PROXY: value })).toThrow(ConfigError);
    expect(() => loadConfig({ TRUST_PROXY: value })).toThrow(/TRUST_PROXY/);
  });
});

describe("TRUST_PROXY=false (the default)", () => {
  const of = resolverFor("false");

  it("ignores X-Forwarded-For entirely", () => {
    expect(of("203.0.113.9", "198.51.100.1")).toBe("203.0.113.9");
  });

  it("reports an IPv4-mapped peer as IPv4", () => {
    expect(of("::ffff:203.0.113.9", undefined)).toBe("203.0.113.9");
  });
});

describe("TRUST_PROXY=1 (and true): one proxy in front", () => {
  for (const setting of ["1", "true"]) {
    const of = resolverFor(setting);

    it(`${setting}: takes what the proxy appended, not what the client wrote before it`, () => {
      // The client sent "X-Forwarded-For: 1.2.3.4"; the proxy appended 198.51.100.7.
      expect(of("10.0.0.2", "1.2.3.4, 198.51.100.7")).toBe("198.51.100.7");
      expect(of("10.0.0.2", ["1.2.3.4", "198.51.100.7"])).toBe("198.51.100.7");
    });

    it(`${setting}: whatever the client writes, its key stays the same`, () => {
      for (const spoof of ["1.1.1.1", "2001:db8::1", "garbage", "1.1.1.1, 2.2.2.2", ""]) {
        const header = spoof === "" ? "198.51.100.7" : `${spoof}, 198.51.100.7`;
        expect(of("10.0.0.2", header)).toBe("198.51.100.7");
      }
    });
  }

  it("with no X-Forwarded-For, the peer is the client", () => {
    expect(resolverFor("1")("198.51.100.7", undefined)).toBe("198.51.100.7");
  });

  it("never returns something that is not an address: the nearest real one stands", () => {
    expect(resolverFor("1")("10.0.0.2", "1.2.3.4, <script>")).toBe("10.0.0.2");
  });

  it("reads the forms proxies write: ports, brackets, IPv4-mapped", () => {
    const of = resolverFor("1");
    expect(of("10.0.0.2", "198.51.100.7:51234")).toBe("198.51.100.7");
    expect(of("10.0.0.2", "[2001:db8::7]:443")).toBe("2001:db8::7");
    expect(of("10.0.0.2", "::ffff:198.51.100.7")).toBe("198.51.100.7");
  });
});

describe("TRUST_PROXY=2: a CDN in front of a load balancer", () => {
  it("takes the address the outer proxy appended", () => {
    // client → CDN (appends client) → LB (appends CDN) → service
    expect(resolverFor("2")("10.0.0.2", "6.6.6.6, 198.51.100.7, 203.0.113.50")).toBe("198.51.100.7");
  });
});

describe("TRUST_PROXY=<networks>", () => {
  const of = resolverFor("10.0.0.0/8,fd00::/8");

  it("skips every trusted proxy from the right and takes the first untrusted address", () => {
    expect(of("10.0.0.2", "6.6.6.6, 198.51.100.7, 10.9.9.9")).toBe("198.51.100.7");
    expect(of("fd00::2", "6.6.6.6, 2001:db8::9")).toBe("2001:db8::9");
  });

  it("ignores X-Forwarded-For from a peer that is not a trusted proxy", () => {
    expect(of("203.0.113.9", "198.51.100.7")).toBe("203.0.113.9");
  });

  it("when every hop is trusted, the leftmost (the one a trusted proxy wrote) is the client", () => {
    expect(of("10.0.0.2", "10.1.1.1")).toBe("10.1.1.1");
  });
});

describe("remembered parses (every request on a connection names the same peer)", () => {
  it("answer as a first parse does, after thousands of other addresses and junk", () => {
    const of = resolverFor("1");
    const first = of("10.0.0.2", "1.2.3.4, 198.51.100.7");
    // More distinct strings than the memo keeps, junk and over-long ones among them.
    for (let i = 0; i < 10_000; i++) {
      const junk = i % 3 === 0 ? `<x${i}>` : i % 3 === 1 ? `${"9".repeat(80)}${i}` : `198.51.${i >> 8}.${i & 255}`;
      const expected = i % 3 === 2 ? junk : "10.0.0.2";
      expect(of("10.0.0.2", junk)).toBe(expected);
    }
    expect(of("10.0.0.2", "1.2.3.4, 198.51.100.7")).toBe(first);
    expect(of("::ffff:10.0.0.2", undefined)).toBe("10.0.0.2");
    expect(of("[2001:db8::7]:443", "::ffff:198.51.100.7")).toBe("198.51.100.7");
  });
});
