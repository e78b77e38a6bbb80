// The one cache helper: entries expire by the clock, the oldest goes first.
import { describe, expect, it } from "vitest";
import { TtlCache } from "../../src/domain/ttl-cache.js";
import { FakeClock } from "../support/fake-clock.js";

describe("TtlCache", () => {
  it("answers until the entry's time, not at it", () => {
    const clock = new FakeClock();
    const cache = new TtlCache<string, string>(clock, 10);
    cache.set("a", "A", 1_000);
    clock.advance(999);
    expect(cache.get("a")).toBe("A");
    clock.advance(1);
    expect(cache.get("a")).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it("drops the oldest entry when full, and re-setting a key makes it the newest", () => {
    const cache = new TtlCache<string, number>(new FakeClock(), 2);
    cache.set("a", 1, 1_000);
    cache.set("b", 2, 1_000);
    cache.set("a", 3, 1_000);
    cache.set("c", 4, 1_000);
    expect([cache.get("a"), cache.get("b"), cache.get("c")]).toEqual([3, undefined, 4]);
  });

  it("forgets by value", () => {
    const cache = new TtlCache<string, { project: string }>(new FakeClock(), 10);
    cache.set("k1", { project: "p1" }, 1_000);
    cache.set("k2", { project: "p2" }, 1_000);
    cache.deleteWhere((v) => v.project === "p1");
    expect(cache.get("k1")).toBeUndefined();
    expect(cache.get("k2")).toEqual({ project: "p2" });
  });
});
