// BusinessDirectory: hits remembered for ttl, misses for missTtl, by a fake clock.
import { beforeEach, describe, expect, it } from "vitest";
import { FakeClock } from "../support/fake-clock.js";
import { BusinessDirectory } from "../../src/domain/business-directory.js";
import { DomainError } from "../../src/domain/errors.js";
import { LookupBudget } from "../../src/domain/lookup-budget.js";
import type { ProjectCredentials, Tenant, TenantStore } from "../../src/domain/tenants.js";

class MemoryTenantStore implements TenantStore {
  readonly businesses = new Map<string, Tenant>();
  calls: string[] = [];
  async projectCredentials(): Promise<ProjectCredentials | undefined> {
    throw new Error("not used");
  }
  async business(businessId: string): Promise<Tenant | undefined> {
    this.calls.push(businessId);
    return this.businesses.get(businessId);
  }
}

function business(id: string, name: string): Tenant {
  return {
    id: `internal-${id}`,
    kind: "business",
    externalId: id,
    name,
    live: true,
    mailFromName: null,
    mailFromAddress: null,
    defaultLocale: "en",
  };
}

const TTL = 30_000;
const MISS_TTL = 2_000;

let store: MemoryTenantStore;
let clock: FakeClock;
let directory: BusinessDirectory;

beforeEach(() => {
  store = new MemoryTenantStore();
  store.businesses.set("42", business("42", "Harbour Yoga"));
  clock = new FakeClock();
  directory = new BusinessDirectory(store, clock, { ttlMs: TTL, missTtlMs: MISS_TTL });
});

describe("BusinessDirectory.find", () => {
  it("returns the business the store knows", async () => {
    await expect(directory.find("42")).resolves.toEqual(business("42", "Harbour Yoga"));
    expect(store.calls).toEqual(["42"]);
  });

  it("serves a hit from the cache for ttl, then asks the store again", async () => {
    await directory.find("42");
    store.businesses.set("42", business("42", "Harbour Yoga & Pilates"));

    clock.advance(TTL - 1);
    expect((await directory.find("42"))?.name).toBe("Harbour Yoga");
    expect(store.calls).toHaveLength(1);

    clock.advance(2);
    expect((await directory.find("42"))?.name).toBe("Harbour Yoga & Pilates");
    expect(store.calls).toHaveLength(2);
  });

  it("remembers a miss only for missTtl, so a new business is found soon", async () => {
    await expect(directory.find("7")).resolves.toBeUndefined();
    store.businesses.set("7", business("7", "New Studio"));

    clock.advance(MISS_TTL - 1);
    await expect(directory.find("7")).resolves.toBeUndefined();
    expect(store.calls).toEqual(["7"]);

    clock.advance(2);
    expect((await directory.find("7"))?.name).toBe("New Studio");
    expect(store.calls).toEqual(["7", "7"]);

    // Now a hit: cached for the longer ttl, well past missTtl.
    clock.advance(MISS_TTL * 5);
    expect((await directory.find("7"))?.name).toBe("New Studio");
    expect(store.calls).toEqual(["7", "7"]);
  });

  it("serves a cached hit for the full ttl, not missTtl, even after the business is removed", async () => {
    await directory.find("42");
    store.businesses.delete("42");
    clock.advance(MISS_TTL + 1);
    // Still a cached hit: the miss TTL does not apply to hits.
    expect((await directory.find("42"))?.name).toBe("Harbour Yoga");
    clock.advance(TTL);
    await expect(directory.find("42")).resolves.toBeUndefined();
    expect(store.calls).toEqual(["42", "42"]);
  });

  it("caches per business id", async () => {
    store.businesses.set("43", business("43", "Other"));
    await directory.find("42");
    await directory.find("43");
    await directory.find("42");
    await directory.find("43");
    expect(store.calls).toEqual(["42", "43"]);
  });

  it("uses 30 s for hits and 2 s for misses by default", async () => {
    const defaults = new BusinessDirectory(store, clock);
    await defaults.find("42");
    await defaults.find("1");
    clock.advance(1_999);
    await defaults.find("1");
    await defaults.find("42");
    expect(store.calls).toEqual(["42", "1"]);
    clock.advance(2);
    await defaults.find("1");
    expect(store.calls).toEqual(["42", "1", "1"]);
    clock.advance(30_000 - 2_001 - 1);
    await defaults.find("42");
    expect(store.calls).toEqual(["42", "1", "1"]);
    clock.advance(2);
    await defaults.find("42");
    expect(store.calls).toEqual(["42", "1", "1", "42"]);
  });

  it("stays within its capacity, dropping the oldest entry", async () => {
    for (const id of ["1", "2", "3"]) store.businesses.set(id, business(id, `B${id}`));
    const small = new BusinessDirectory(store, clock, { ttlMs: TTL, missTtlMs: MISS_TTL, capacity: 2 });
    await small.find("1");
    await small.find("2");
    await small.find("3"); // evicts "1"
    store.calls = [];
    await small.find("2");
    await small.find("3");
    expect(store.calls).toEqual([]);
    await small.find("1");
    expect(store.calls).toEqual(["1"]);
  });
});

describe("BusinessDirectory eviction", () => {
  it("refreshing an expired entry does not evict a live one", async () => {
    const small = new BusinessDirectory(store, clock, { capacity: 2 });
    store.businesses.set("B", business("B", "Bakery"));
    await small.find("B");
    await small.find("A"); // a miss, remembered for 2 s
    clock.advance(3_000);
    await small.find("A"); // expired miss: asks again
    await small.find("B"); // still live: must not ask
    expect(store.calls).toEqual(["B", "A", "A"]);
  });
});

describe("BusinessDirectory.known", () => {
  it("returns the business a legacy call names", async () => {
    await expect(directory.known("42")).resolves.toEqual(business("42", "Harbour Yoga"));
  });

  it("refuses an unknown one as the caller's bad business_id (a proto path; the transport spells it)", async () => {
    const err = await directory.known("7").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DomainError);
    expect((err as DomainError).reason).toBe("invalid_argument");
    expect((err as DomainError).details.violations).toEqual([{ field: "business_id", description: "names no known business" }]);
  });
});

describe("the lookup budget", () => {
  const limit = { burst: 3, periodMs: 1_000 };

  it("charges a client for each name not remembered, and refuses past its budget without asking the store", async () => {
    const budgeted = new BusinessDirectory(store, clock, { budget: new LookupBudget(clock, limit) });
    for (const id of ["1", "2", "3"]) await expect(budgeted.find(id, "198.51.100.7")).resolves.toBeUndefined();
    const refused = await budgeted.find("4", "198.51.100.7").catch((err: DomainError) => err);
    expect(refused).toBeInstanceOf(DomainError);
    expect(refused).toMatchObject({ reason: "rate_limited", details: { retryAfterMs: 1_000, limit: "lookup" } });
    expect(store.calls).toEqual(["1", "2", "3"]);

    // A remembered name is free, a miss included; another client has its own budget.
    await expect(budgeted.find("1", "198.51.100.7")).resolves.toBeUndefined();
    await expect(budgeted.find("4", "203.0.113.1")).resolves.toBeUndefined();
    // One lookup refills per period.
    clock.advance(1_000);
    await expect(budgeted.find("5", "198.51.100.7")).resolves.toBeUndefined();
    await expect(budgeted.find("6", "198.51.100.7")).rejects.toMatchObject({ reason: "rate_limited" });
  });

  it("counts an IPv6 /64 as one client, and callers with no address as one", async () => {
    const budgeted = new BusinessDirectory(store, clock, { budget: new LookupBudget(clock, limit) });
    for (const [i, ip] of ["2001:db8::1", "2001:db8::2", "2001:db8::3"].entries()) await budgeted.find(`v6-${i}`, ip);
    await expect(budgeted.find("v6-x", "2001:db8::ffff")).rejects.toMatchObject({ reason: "rate_limited" });
    for (const id of ["u1", "u2", "u3"]) await budgeted.find(id);
    await expect(budgeted.find("u4")).rejects.toMatchObject({ reason: "rate_limited" });
  });
});
