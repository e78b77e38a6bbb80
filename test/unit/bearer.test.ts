// The one bearer-token check (admin API, /metrics).
import { describe, expect, it } from "vitest";
import { bearerCheck } from "../../src/transport/bearer.js";

describe("bearerCheck", () => {
  const matches = bearerCheck("s3cret-token");
  it("accepts the token after the scheme, in any case, with one or more spaces", () => {
    expect(matches("Bearer s3cret-token")).toBe(true);
    expect(matches("bearer  s3cret-token")).toBe(true);
  });
  it("refuses anything else", () => {
    for (const header of [undefined, "", "Bearer", "Bearer ", "Bearer s3cret", "Bearer s3cret-token ", "Basic s3cret-token", "Bearer s3cret-token x", "Bearer\ts3cret-token"]) {
      expect(matches(header), String(header)).toBe(false);
    }
  });
});
