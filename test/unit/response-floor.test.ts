// The response floor of the public legacy routes: no answer sooner than the
// minimum, and the floor follows the work when the work takes longer.
import { describe, expect, it } from "vitest";
import { ResponseFloor } from "../../src/domain/response-floor.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("ResponseFloor", () => {
  it("answers no sooner than the minimum, failures included", async () => {
    const floor = new ResponseFloor(30);
    const t0 = performance.now();
    expect(await floor.hold(async () => "ok")).toBe("ok");
    expect(performance.now() - t0).toBeGreaterThanOrEqual(29);
    const t1 = performance.now();
    await expect(floor.hold(async () => Promise.reject(new Error("wrong code")))).rejects.toThrow("wrong code");
    expect(performance.now() - t1).toBeGreaterThanOrEqual(29);
  });

  it("rises to the 95th percentile of recent work, so slower work does not show", async () => {
    const floor = new ResponseFloor(5);
    expect(floor.floorMs).toBe(5);
    for (let i = 0; i < 20; i++) await floor.hold(() => sleep(i < 19 ? 1 : 40));
    expect(floor.floorMs).toBeGreaterThanOrEqual(39);
    expect(floor.floorMs).toBeLessThan(1_000);
  });

  it("is off with a zero minimum", async () => {
    const floor = new ResponseFloor(0);
    const t0 = performance.now();
    await floor.hold(async () => undefined);
    expect(performance.now() - t0).toBeLessThan(20);
  });
});
