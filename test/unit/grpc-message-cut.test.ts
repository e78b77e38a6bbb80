// A grpc-message too long to send is cut, and still decodes: never inside a
// %XX escape, nor between the bytes of one UTF-8 character.
import { describe, expect, it } from "vitest";
import { cutEncoded } from "../../src/transport/error-writer.js";

describe("cutEncoded", () => {
  it.each([
    ["ASCII", "a".repeat(5_000)],
    ["escapes everywhere", "\x01".repeat(5_000)],
    ["two-byte characters", "é".repeat(5_000)],
    ["three-byte characters", "…".repeat(5_000)],
    ["four-byte characters", "😀".repeat(5_000)],
    ["a mix at every offset", "ab\x01é😀…c".repeat(1_000)],
  ])("%s: at most the limit, decodable, a prefix of the message, marked as cut", (_name, message) => {
    const encoded = encodeURIComponent(message);
    for (let max = 1_000; max < 1_012; max++) {
      const cut = cutEncoded(encoded, max);
      expect(cut.length).toBeLessThanOrEqual(max);
      const decoded = decodeURIComponent(cut);
      expect(decoded.endsWith("…")).toBe(true);
      expect(message.startsWith(decoded.slice(0, -1))).toBe(true);
      expect(decoded.length).toBeGreaterThan(100);
    }
  });
});
