// WorkSlots: at most `max` jobs at once, a short queue, urgent jobs first,
// and a refusal rather than an unbounded wait.
import { describe, expect, it } from "vitest";
import { WorkSlots } from "../../src/domain/work-slots.js";

function gate() {
  let open: () => void = () => {};
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { open: () => open(), opened };
}

describe("WorkSlots", () => {
  it("runs at most max jobs at once, queues maxQueued, refuses the rest, and serves urgent waiters first", async () => {
    const slots = new WorkSlots(2, 2);
    const order: string[] = [];
    let running = 0;
    let peak = 0;
    const job = (name: string, g: { opened: Promise<void> }) => async () => {
      running += 1;
      peak = Math.max(peak, running);
      order.push(name);
      await g.opened;
      running -= 1;
      return name;
    };
    const g = gate();
    const a = slots.run(job("a", g));
    const b = slots.run(job("b", g));
    const c = slots.run(job("c", g));
    const d = slots.run(job("d", g), true);
    expect(await slots.run(job("e", g))).toBeUndefined();
    g.open();
    expect(await Promise.all([a, b, c, d])).toEqual([{ value: "a" }, { value: "b" }, { value: "c" }, { value: "d" }]);
    expect(peak).toBe(2);
    // d came after c but was urgent.
    expect(order).toEqual(["a", "b", "d", "c"]);
    // All slots free again.
    expect(await slots.run(async () => 1)).toEqual({ value: 1 });
  });
});
