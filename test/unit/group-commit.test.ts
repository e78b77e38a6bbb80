// Group commit's queueing, without a database: what waits, what goes into
// one batch, and what happens when a batch fails or a deadline passes.
import { describe, expect, it } from "vitest";
import { DomainError } from "../../src/domain/errors.js";
import { GroupCommit } from "../../src/storage/group-commit.js";
import { runWithStatementSignal } from "../../src/storage/statement-deadline.js";

/** A runner whose batches finish only when told to. */
function gatedRunner() {
  const batches: { inputs: readonly number[]; finish(err?: unknown): void }[] = [];
  const run = (inputs: readonly number[]) =>
    new Promise<readonly string[]>((resolve, reject) => {
      batches.push({ inputs, finish: (err) => (err ? reject(err) : resolve(inputs.map((i) => `done ${i}`))) });
    });
  return { batches, run };
}

const tick = () => new Promise((r) => setImmediate(r));

describe("GroupCommit", () => {
  it("runs a call at once, as a batch of one, when no batch is under way", async () => {
    const { batches, run } = gatedRunner();
    const gc = new GroupCommit(run, { maxBatch: 16, maxInFlight: 2 }, () => false);
    const result = gc.submit(1);
    expect(batches.map((b) => b.inputs)).toEqual([[1]]);
    batches[0]!.finish();
    expect(await result).toBe("done 1");
  });

  it("fills a free slot beside a running batch at the end of the turn, with every call of that turn up to maxBatch", async () => {
    const { batches, run } = gatedRunner();
    const gc = new GroupCommit(run, { maxBatch: 3, maxInFlight: 2 }, () => false);
    const results = [1, 2, 3, 4, 5].map((i) => gc.submit(i));
    expect(batches.map((b) => b.inputs)).toEqual([[1]]);
    await tick();
    expect(batches.map((b) => b.inputs)).toEqual([[1], [2, 3, 4]]);
    batches[0]!.finish();
    await tick();
    expect(batches.map((b) => b.inputs)).toEqual([[1], [2, 3, 4], [5]]);
    batches[1]!.finish();
    batches[2]!.finish();
    expect(await Promise.all(results)).toEqual([1, 2, 3, 4, 5].map((i) => `done ${i}`));
  });

  it("coalesces the calls that wait for a slot into batches of at most maxBatch", async () => {
    const { batches, run } = gatedRunner();
    const gc = new GroupCommit(run, { maxBatch: 3, maxInFlight: 1 }, () => false);
    const results = [1, 2, 3, 4, 5, 6].map((i) => gc.submit(i));
    expect(batches.map((b) => b.inputs)).toEqual([[1]]);
    await tick();
    expect(batches).toHaveLength(1);
    batches[0]!.finish();
    await tick();
    expect(batches.map((b) => b.inputs)).toEqual([[1], [2, 3, 4]]);
    batches[1]!.finish();
    await tick();
    expect(batches.map((b) => b.inputs)).toEqual([[1], [2, 3, 4], [5, 6]]);
    batches[2]!.finish();
    expect(await Promise.all(results)).toEqual([1, 2, 3, 4, 5, 6].map((i) => `done ${i}`));
  });

  it("retries each call of a failed batch alone when the failure may be one call's, so the others still succeed", async () => {
    const { batches, run } = gatedRunner();
    const gc = new GroupCommit(run, { maxBatch: 8, maxInFlight: 1 }, (err) => !(err instanceof DomainError));
    const first = gc.submit(1);
    const rest = [2, 3].map((i) => gc.submit(i));
    batches[0]!.finish();
    await tick();
    expect(batches[1]!.inputs).toEqual([2, 3]);
    batches[1]!.finish(new Error("unique violation"));
    await tick();
    expect(batches.slice(2).map((b) => b.inputs)).toEqual([[2], [3]]);
    batches[2]!.finish(new Error("unique violation"));
    batches[3]!.finish();
    expect(await first).toBe("done 1");
    await expect(rest[0]).rejects.toThrow("unique violation");
    expect(await rest[1]).toBe("done 3");
  });

  it("fails every call of a batch at once when the database is out of reach", async () => {
    const { batches, run } = gatedRunner();
    const gc = new GroupCommit(run, { maxBatch: 8, maxInFlight: 1 }, (err) => !(err instanceof DomainError));
    const first = gc.submit(1);
    const rest = [2, 3].map((i) => gc.submit(i));
    batches[0]!.finish();
    await first;
    await tick();
    batches[1]!.finish(new DomainError("unavailable", "down"));
    for (const r of rest) await expect(r).rejects.toThrow("down");
    expect(batches).toHaveLength(2);
  });

  it.each([
    { waitingFor: "a slot", maxInFlight: 1 },
    { waitingFor: "the end of its turn", maxInFlight: 2 },
  ])("lets a call waiting for $waitingFor whose deadline passes leave with deadline_exceeded, and never runs it", async ({ maxInFlight }) => {
    const { batches, run } = gatedRunner();
    const gc = new GroupCommit(run, { maxBatch: 8, maxInFlight }, () => false);
    const first = gc.submit(1);
    const deadline = new AbortController();
    const late = runWithStatementSignal(deadline.signal, () => gc.submit(2));
    const other = gc.submit(3);
    deadline.abort();
    await expect(late).rejects.toMatchObject({ reason: "deadline_exceeded" });
    if (maxInFlight === 1) batches[0]!.finish();
    await tick();
    expect(batches.map((b) => b.inputs)).toEqual([[1], [3]]);
    for (const b of batches) b.finish();
    expect(await first).toBe("done 1");
    expect(await other).toBe("done 3");
  });

  it("stops listening to a call's deadline once its batch has left", async () => {
    const { batches, run } = gatedRunner();
    const gc = new GroupCommit(run, { maxBatch: 8, maxInFlight: 1 }, () => false);
    const first = gc.submit(1);
    const deadline = new AbortController();
    const result = runWithStatementSignal(deadline.signal, () => gc.submit(2));
    batches[0]!.finish();
    await tick();
    expect(batches.map((b) => b.inputs)).toEqual([[1], [2]]);
    deadline.abort();
    batches[1]!.finish();
    expect(await first).toBe("done 1");
    expect(await result).toBe("done 2");
  });
});
