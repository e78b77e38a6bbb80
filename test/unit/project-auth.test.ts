// ProjectAuthenticator against an in-memory TenantStore and a fake clock.
import { beforeAll, beforeEach, describe, expect, it } from "vitest";
import { FakeClock } from "../support/fake-clock.js";
import { DomainError } from "../../src/domain/errors.js";
import { newId } from "../../src/domain/ids.js";
import { hashSecret, verifySecret } from "../../src/domain/password-hash.js";
import { DEFAULT_PROJECT_AUTH, ProjectAuthenticator } from "../../src/domain/project-auth.js";
import type { ProjectCredentials, Tenant, TenantStore } from "../../src/domain/tenants.js";

/** TenantStore port kept in a Map; counts projectCredentials calls. */
class MemoryTenantStore implements TenantStore {
  readonly projects = new Map<string, ProjectCredentials>();
  projectCalls: string[] = [];
  async projectCredentials(projectId: string): Promise<ProjectCredentials | undefined> {
    this.projectCalls.push(projectId);
    return this.projects.get(projectId);
  }
  async business(): Promise<Tenant | undefined> {
    throw new Error("not used");
  }
}

interface Project {
  readonly projectId: string;
  readonly secret: string;
  readonly tenant: Tenant;
}

function tenantFor(projectId: string, n: number): Tenant {
  return {
    id: String(n),
    kind: "project",
    externalId: projectId,
    name: `Project ${n}`,
    live: false,
    mailFromName: null,
    mailFromAddress: null,
    defaultLocale: "en",
  };
}

const TTL = 60_000;
// Hashing is slow (scrypt): make the projects once and reuse them.
const projects: Project[] = [];
const hashes = new Map<string, string>();

beforeAll(async () => {
  for (let n = 1; n <= 3; n++) {
    const projectId = newId("project", false);
    const secret = `secret-${n}-${newId("request-id", false)}`;
    hashes.set(projectId, await hashSecret(secret));
    projects.push({ projectId, secret, tenant: tenantFor(projectId, n) });
  }
});

let store: MemoryTenantStore;
let clock: FakeClock;
let auth: ProjectAuthenticator;
/** The stored hashes each scrypt verification ran against, in order. */
let hashed: string[];

beforeEach(() => {
  store = new MemoryTenantStore();
  for (const p of projects) {
    store.projects.set(p.projectId, {
      tenant: p.tenant,
      secretHash: hashes.get(p.projectId)!,
      previousSecretHash: null,
      previousSecretExpiresAt: null,
    });
  }
  clock = new FakeClock();
  hashed = [];
  const countingVerify = (secret: string, stored: string) => {
    hashed.push(stored);
    return verifySecret(secret, stored);
  };
  auth = new ProjectAuthenticator(store, clock, { ...DEFAULT_PROJECT_AUTH, cacheSize: 2, cacheTtlMs: TTL }, countingVerify);
});

async function reasonOf(promise: Promise<unknown>): Promise<string> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, "expected authenticate to fail").toBeInstanceOf(DomainError);
  return (err as DomainError).reason;
}

describe("ProjectAuthenticator.authenticate", () => {
  it("returns the project's tenant for the right secret", async () => {
    const [p] = projects;
    await expect(auth.authenticate(p!.projectId, p!.secret)).resolves.toEqual(p!.tenant);
    expect(store.projectCalls).toEqual([p!.projectId]);
  });

  it("rejects a wrong secret as unauthenticated", async () => {
    const [p, q] = projects;
    expect(await reasonOf(auth.authenticate(p!.projectId, `${p!.secret}x`))).toBe("unauthenticated");
    expect(await reasonOf(auth.authenticate(p!.projectId, ""))).toBe("unauthenticated");
    // Another project's secret is wrong too.
    expect(await reasonOf(auth.authenticate(p!.projectId, q!.secret))).toBe("unauthenticated");
  });

  it("rejects an unknown project as unauthenticated", async () => {
    const unknown = newId("project", false);
    expect(await reasonOf(auth.authenticate(unknown, projects[0]!.secret))).toBe("unauthenticated");
    expect(store.projectCalls).toEqual([unknown]);
  });

  it("rejects a malformed project id without asking the store", async () => {
    const [p] = projects;
    for (const id of ["", p!.projectId.toUpperCase(), `${p!.projectId} `]) {
      expect(await reasonOf(auth.authenticate(id, p!.secret)), JSON.stringify(id)).toBe("unauthenticated");
    }
    expect(store.projectCalls).toEqual([]);
  });

  it("serves a verified pair from the cache within the TTL, then asks the store again", async () => {
    const [p] = projects;
    await auth.authenticate(p!.projectId, p!.secret);
    expect(store.projectCalls).toHaveLength(1);

    clock.advance(TTL - 1);
    await expect(auth.authenticate(p!.projectId, p!.secret)).resolves.toEqual(p!.tenant);
    expect(store.projectCalls).toHaveLength(1);

    clock.advance(2);
    await expect(auth.authenticate(p!.projectId, p!.secret)).resolves.toEqual(p!.tenant);
    expect(store.projectCalls).toHaveLength(2);

    // Re-verified: cached again from now on.
    clock.advance(TTL - 1);
    await auth.authenticate(p!.projectId, p!.secret);
    expect(store.projectCalls).toHaveLength(2);
  });

  it("after the TTL, notices a project that no longer exists", async () => {
    const [p] = projects;
    await auth.authenticate(p!.projectId, p!.secret);
    store.projects.delete(p!.projectId);
    await auth.authenticate(p!.projectId, p!.secret); // still cached
    clock.advance(TTL + 1);
    expect(await reasonOf(auth.authenticate(p!.projectId, p!.secret))).toBe("unauthenticated");
  });

  it("remembers a refused pair (no second hash), and a cached right one does not admit a wrong one", async () => {
    const [p] = projects;
    const wrong = `${p!.secret}-wrong`;
    expect(await reasonOf(auth.authenticate(p!.projectId, wrong))).toBe("unauthenticated");
    expect(await reasonOf(auth.authenticate(p!.projectId, wrong))).toBe("unauthenticated");
    expect(store.projectCalls).toHaveLength(1);

    await auth.authenticate(p!.projectId, p!.secret);
    expect(store.projectCalls).toHaveLength(2);
    expect(await reasonOf(auth.authenticate(p!.projectId, wrong))).toBe("unauthenticated");
    // The refusal is remembered only for the cache TTL.
    clock.advance(TTL + 1);
    expect(await reasonOf(auth.authenticate(p!.projectId, wrong))).toBe("unauthenticated");
    expect(store.projectCalls).toHaveLength(3);
  });

  it("does not serve one project's cached pair to another project id", async () => {
    const [p, q] = projects;
    await auth.authenticate(p!.projectId, p!.secret);
    expect(await reasonOf(auth.authenticate(q!.projectId, p!.secret))).toBe("unauthenticated");
  });

  it("keeps the cache bounded at cacheSize, dropping the oldest pair", async () => {
    // cacheSize is 2: verify three projects; only the last two stay cached.
    const [p1, p2, p3] = projects;
    for (const p of projects) await auth.authenticate(p.projectId, p.secret);
    expect(store.projectCalls).toHaveLength(3);

    store.projectCalls = [];
    await expect(auth.authenticate(p2!.projectId, p2!.secret)).resolves.toEqual(p2!.tenant);
    await expect(auth.authenticate(p3!.projectId, p3!.secret)).resolves.toEqual(p3!.tenant);
    expect(store.projectCalls).toEqual([]);

    // The oldest (p1) was dropped: verifying it again drops p2 in turn.
    await expect(auth.authenticate(p1!.projectId, p1!.secret)).resolves.toEqual(p1!.tenant);
    expect(store.projectCalls).toEqual([p1!.projectId]);
    await auth.authenticate(p3!.projectId, p3!.secret);
    expect(store.projectCalls).toEqual([p1!.projectId]);

    const size = (auth as unknown as { verified: Map<string, unknown> }).verified.size;
    expect(size).toBe(2);
  });
});

describe("re-checking a remembered pair after the TTL", () => {
  // A scrypt verification takes 16 MiB and tens of ms of CPU: re-running it
  // every TTL for a pair already proven against the same stored hash buys
  // nothing, since the answer depends only on the secret and that hash.
  it("asks the store again but does not hash again while the stored hash is unchanged", async () => {
    const [p] = projects;
    await auth.authenticate(p!.projectId, p!.secret);
    expect(hashed).toHaveLength(1);
    for (let round = 1; round <= 3; round++) {
      clock.advance(TTL + 1);
      await expect(auth.authenticate(p!.projectId, p!.secret)).resolves.toEqual(p!.tenant);
      expect(store.projectCalls).toHaveLength(1 + round);
    }
    expect(hashed).toHaveLength(1);
  });

  it("serves the tenant as the store has it now, not as it was first proven", async () => {
    const [p] = projects;
    await auth.authenticate(p!.projectId, p!.secret);
    const renamed = { ...p!.tenant, name: "Renamed" };
    store.projects.set(p!.projectId, { ...store.projects.get(p!.projectId)!, tenant: renamed });
    clock.advance(TTL + 1);
    await expect(auth.authenticate(p!.projectId, p!.secret)).resolves.toEqual(renamed);
  });

  it("hashes again, and refuses, once the secret was rotated away without grace", async () => {
    const [p] = projects;
    await auth.authenticate(p!.projectId, p!.secret);
    const newHash = await hashSecret("the-new-secret");
    store.projects.set(p!.projectId, { ...store.projects.get(p!.projectId)!, secretHash: newHash });
    clock.advance(TTL + 1);
    expect(await reasonOf(auth.authenticate(p!.projectId, p!.secret))).toBe("unauthenticated");
    expect(hashed).toEqual([hashes.get(p!.projectId), newHash]);
    // The stale proof is dropped with the refusal.
    expect((auth as unknown as { proven: Map<string, unknown> }).proven.size).toBe(0);
  });

  it("does not let a pair proven for one project stand for another with the same stored hash", async () => {
    const [p, q] = projects;
    await auth.authenticate(p!.projectId, p!.secret);
    // q now stores p's hash: p's secret is right for q too, but is proven for q by its own hash.
    store.projects.set(q!.projectId, { ...store.projects.get(q!.projectId)!, secretHash: hashes.get(p!.projectId)! });
    await expect(auth.authenticate(q!.projectId, p!.secret)).resolves.toEqual(q!.tenant);
    expect(hashed).toHaveLength(2);
    // A wrong secret for q finds nothing remembered.
    expect(await reasonOf(auth.authenticate(q!.projectId, q!.secret))).toBe("unauthenticated");
    expect(hashed).toHaveLength(3);
  });

  it("keeps a previous secret proven only until its grace period ends", async () => {
    const [p] = projects;
    const oldHash = hashes.get(p!.projectId)!;
    const newHash = await hashSecret("the-new-secret");
    store.projects.set(p!.projectId, { ...store.projects.get(p!.projectId)!, secretHash: newHash, previousSecretHash: oldHash, previousSecretExpiresAt: clock.now() + 3 * TTL });
    await expect(auth.authenticate(p!.projectId, p!.secret)).resolves.toEqual(p!.tenant);
    expect(hashed).toEqual([newHash, oldHash]);
    // Within the grace period, re-checked without hashing.
    clock.advance(TTL + 1);
    await expect(auth.authenticate(p!.projectId, p!.secret)).resolves.toEqual(p!.tenant);
    expect(hashed).toHaveLength(2);
    // After it, the remembered proof no longer counts.
    clock.advance(2 * TTL);
    expect(await reasonOf(auth.authenticate(p!.projectId, p!.secret))).toBe("unauthenticated");
    expect(hashed).toEqual([newHash, oldHash, newHash]);
  });

  it("forgets a project's proofs with the rest of its cache", async () => {
    const [p] = projects;
    await auth.authenticate(p!.projectId, p!.secret);
    auth.forget(p!.projectId);
    await auth.authenticate(p!.projectId, p!.secret);
    expect(hashed).toHaveLength(2);
  });
});

describe("secret rotation", () => {
  it("accepts the previous secret until its grace period ends, and not after", async () => {
    const [p] = projects;
    const oldSecret = p!.secret;
    store.projects.set(p!.projectId, {
      tenant: p!.tenant,
      secretHash: await hashSecret("the-new-secret"),
      previousSecretHash: hashes.get(p!.projectId)!,
      previousSecretExpiresAt: clock.now() + 30_000,
    });
    await expect(auth.authenticate(p!.projectId, "the-new-secret")).resolves.toEqual(p!.tenant);
    await expect(auth.authenticate(p!.projectId, oldSecret)).resolves.toEqual(p!.tenant);
    clock.advance(30_001);
    expect(await reasonOf(auth.authenticate(p!.projectId, oldSecret))).toBe("unauthenticated");
    await expect(auth.authenticate(p!.projectId, "the-new-secret")).resolves.toEqual(p!.tenant);
  });
});

describe("refusing wrong secrets cheaply", () => {
  const distinctWrong = (n: number) => `wrong-secret-${n}`;

  it("budgets failures per client: the 11th wrong secret from one client is rate_limited without a hash, other clients are not affected", async () => {
    const [p] = projects;
    for (let n = 0; n < 10; n++) expect(await reasonOf(auth.authenticate(p!.projectId, distinctWrong(n), "203.0.113.5"))).toBe("unauthenticated");
    const calls = store.projectCalls.length;
    expect(await reasonOf(auth.authenticate(p!.projectId, distinctWrong(10), "203.0.113.5"))).toBe("rate_limited");
    // Refused before even the lookup.
    expect(store.projectCalls).toHaveLength(calls);
    // Even the right secret waits out the budget from that client ...
    expect(await reasonOf(auth.authenticate(p!.projectId, p!.secret, "203.0.113.5"))).toBe("rate_limited");
    // ... while another client authenticates.
    await expect(auth.authenticate(p!.projectId, p!.secret, "198.51.100.1")).resolves.toEqual(p!.tenant);
    // The budget refills: one more try every 6 s.
    clock.advance(6_000);
    expect(await reasonOf(auth.authenticate(p!.projectId, distinctWrong(11), "203.0.113.5"))).toBe("unauthenticated");
  });

  it("budgets failures per project: 30, whatever the clients", async () => {
    const [, q] = projects;
    for (let n = 0; n < 30; n++) {
      expect(await reasonOf(auth.authenticate(q!.projectId, distinctWrong(n), `203.0.113.${n}`))).toBe("unauthenticated");
    }
    expect(await reasonOf(auth.authenticate(q!.projectId, distinctWrong(31), "203.0.113.200"))).toBe("rate_limited");
  });

  /** As `auth`, with a verification that answers at once: these tests hash dozens of wrong secrets, which scrypt would take seconds for. */
  const withFastHashing = () =>
    new ProjectAuthenticator(store, clock, { ...DEFAULT_PROJECT_AUTH, cacheSize: 2, cacheTtlMs: TTL }, async (secret, stored) => {
      hashed.push(stored);
      return projects.some((p) => hashes.get(p.projectId) === stored && p.secret === secret);
    });

  it("a caller that proved its secret here is not locked out by strangers' wrong secrets once its cache entry expires", async () => {
    auth = withFastHashing();
    const [p] = projects;
    await expect(auth.authenticate(p!.projectId, p!.secret, "198.51.100.7")).resolves.toEqual(p!.tenant);
    // Project ids are public: strangers on many addresses keep the project's failure budget empty.
    const strangers = async (from: number) => {
      for (let n = 0; n < 35; n++) await reasonOf(auth.authenticate(p!.projectId, distinctWrong(from + n), `203.0.113.${n}`));
    };
    for (let round = 0; round < 3; round++) {
      clock.advance(TTL + 1);
      await strangers(100 * round);
      expect(await reasonOf(auth.authenticate(p!.projectId, distinctWrong(1_000 + round), "203.0.113.250"))).toBe("rate_limited");
      // The pair proven against the stored hash still stands: no budget asked, no hash run.
      const hashes = hashed.length;
      await expect(auth.authenticate(p!.projectId, p!.secret, "198.51.100.7")).resolves.toEqual(p!.tenant);
      expect(hashed).toHaveLength(hashes);
    }
  });

  it("a call the project's budget refuses costs its client nothing", async () => {
    auth = withFastHashing();
    const [, q] = projects;
    for (let n = 0; n < 30; n++) await reasonOf(auth.authenticate(q!.projectId, distinctWrong(n), `203.0.113.${n}`));
    // Refused by the project's budget, eleven times over, from one client ...
    for (let n = 0; n < 11; n++) expect(await reasonOf(auth.authenticate(q!.projectId, q!.secret, "198.51.100.8"))).toBe("rate_limited");
    // ... which still has its whole budget once the project's has refilled.
    clock.advance(2_000);
    await expect(auth.authenticate(q!.projectId, q!.secret, "198.51.100.8")).resolves.toEqual(q!.tenant);
  });

  it("a success costs no budget", async () => {
    const [p] = projects;
    for (let n = 0; n < 9; n++) await reasonOf(auth.authenticate(p!.projectId, distinctWrong(n), "203.0.113.9"));
    auth.forget(p!.projectId);
    for (let n = 0; n < 5; n++) {
      auth.forget(p!.projectId);
      await expect(auth.authenticate(p!.projectId, p!.secret, "203.0.113.9")).resolves.toEqual(p!.tenant);
    }
    expect(await reasonOf(auth.authenticate(p!.projectId, distinctWrong(9), "203.0.113.9"))).toBe("unauthenticated");
  });
});
