import type { Clock } from "../../src/domain/clock.js";

/** A clock that moves only when a test says so. */
export class FakeClock implements Clock {
  constructor(private t = 1_700_000_000_000) {}
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}
