// Codes, their keyed hashes under a rotating pepper, and outbox encryption.
import { describe, expect, it } from "vitest";
import { CODE_DIGITS, generateCode, Secrets } from "../../src/domain/secrets.js";

const OLD = { id: 1, secret: "old-pepper-0123456789abcdef0123456789" };
const NEW = { id: 2, secret: "new-pepper-0123456789abcdef0123456789" };

describe("generateCode", () => {
  const DRAWS = 5_000;
  const codes = Array.from({ length: DRAWS }, () => generateCode());

  it("always gives exactly 6 ASCII digits", () => {
    expect(CODE_DIGITS).toBe(6);
    for (const code of codes) expect(code).toMatch(/^[0-9]{6}$/);
  });

  it("uses every digit in every position, leading zeros included", () => {
    // P(some digit never drawn in some position) <= 60 * 0.9^5000: never.
    for (let pos = 0; pos < CODE_DIGITS; pos++) {
      const counts = new Array<number>(10).fill(0);
      for (const code of codes) counts[Number(code[pos])]!++;
      for (let digit = 0; digit < 10; digit++) {
        // Expected 500 each (sd ~21); these bounds only catch gross bias.
        expect(counts[digit], `digit ${digit} at position ${pos}`).toBeGreaterThan(300);
        expect(counts[digit], `digit ${digit} at position ${pos}`).toBeLessThan(700);
      }
    }
    expect(codes.some((c) => c.startsWith("0"))).toBe(true);
  });

  it("is not repetitive", () => {
    // 5000 draws from 10^6: about 12 collisions are expected.
    expect(new Set(codes).size).toBeGreaterThan(DRAWS - 100);
  });
});

describe("Secrets.hashCode", () => {
  const secrets = new Secrets(NEW, [OLD]);

  it("is deterministic, across instances built from the same pepper", () => {
    const a = secrets.hashCode("1", "jane@example.com", "012345");
    expect(a).toBeInstanceOf(Buffer);
    expect(a).toHaveLength(32);
    expect(secrets.hashCode("1", "jane@example.com", "012345").equals(a)).toBe(true);
    expect(new Secrets(NEW).hashCode("1", "jane@example.com", "012345").equals(a)).toBe(true);
  });

  it("defaults to the current key id", () => {
    expect(secrets.keyId).toBe(2);
    expect(secrets.hashCode("1", "a@b.co", "111111").equals(secrets.hashCode("1", "a@b.co", "111111", 2))).toBe(true);
  });

  it("differs when the tenant, address, code or key id changes", () => {
    const base = secrets.hashCode("1", "jane@example.com", "012345", 2).toString("hex");
    const variants = [
      secrets.hashCode("2", "jane@example.com", "012345", 2),
      secrets.hashCode("1", "john@example.com", "012345", 2),
      secrets.hashCode("1", "jane@example.com", "012346", 2),
      secrets.hashCode("1", "jane@example.com", "012345", 1),
    ].map((b) => b.toString("hex"));
    for (const v of variants) expect(v).not.toBe(base);
    expect(new Set(variants).size).toBe(variants.length);
  });

  it("does not let fields run into each other", () => {
    expect(secrets.hashCode("1", "2a@b.co", "123456").equals(secrets.hashCode("12", "a@b.co", "123456"))).toBe(false);
  });

  it("depends on the pepper secret, not only its id", () => {
    const other = new Secrets({ id: 2, secret: "another-pepper-0123456789abcdef012345" });
    expect(other.hashCode("1", "a@b.co", "123456").equals(secrets.hashCode("1", "a@b.co", "123456"))).toBe(false);
  });

  it("throws for a key id that is not configured", () => {
    expect(() => secrets.hashCode("1", "a@b.co", "123456", 9)).toThrow(/no pepper with id 9/);
  });
});

describe("Secrets.codeMatches", () => {
  const secrets = new Secrets(OLD);
  const stored = secrets.hashCode("7", "jane@example.com", "000123");

  it("is true for the right code, tenant and address", () => {
    expect(secrets.codeMatches(stored, 1, "7", "jane@example.com", "000123")).toBe(true);
  });

  it("is false when anything differs", () => {
    expect(secrets.codeMatches(stored, 1, "7", "jane@example.com", "000124")).toBe(false);
    expect(secrets.codeMatches(stored, 1, "7", "jane@example.com", "123")).toBe(false);
    expect(secrets.codeMatches(stored, 1, "8", "jane@example.com", "000123")).toBe(false);
    expect(secrets.codeMatches(stored, 1, "7", "john@example.com", "000123")).toBe(false);
  });

  it("is false (and does not throw) for an unknown key id or a malformed stored hash", () => {
    expect(secrets.codeMatches(stored, 5, "7", "jane@example.com", "000123")).toBe(false);
    expect(secrets.codeMatches(stored.subarray(0, 16), 1, "7", "jane@example.com", "000123")).toBe(false);
    expect(secrets.codeMatches(Buffer.alloc(0), 1, "7", "jane@example.com", "000123")).toBe(false);
  });

  it("still verifies codes hashed under a previous pepper after rotation", () => {
    const rotated = new Secrets(NEW, [OLD]);
    expect(rotated.keyId).toBe(2);
    expect(rotated.codeMatches(stored, 1, "7", "jane@example.com", "000123")).toBe(true);
    expect(rotated.codeMatches(stored, 1, "7", "jane@example.com", "999999")).toBe(false);
    // The stored hash is bound to key id 1: under the new key it does not match.
    expect(rotated.codeMatches(stored, 2, "7", "jane@example.com", "000123")).toBe(false);
    // New codes are hashed under the new key.
    const fresh = rotated.hashCode("7", "jane@example.com", "000123");
    expect(fresh.equals(stored)).toBe(false);
    expect(rotated.codeMatches(fresh, 2, "7", "jane@example.com", "000123")).toBe(true);
  });

  it("forgets a pepper once it is no longer configured", () => {
    const dropped = new Secrets(NEW);
    expect(dropped.codeMatches(stored, 1, "7", "jane@example.com", "000123")).toBe(false);
  });
});

describe("Secrets.encrypt / decrypt", () => {
  const secrets = new Secrets(OLD);
  const context = "<abc@otp.localhost>";

  it("round-trips and never contains the plaintext", () => {
    const sealed = secrets.encrypt("042137", context);
    expect(sealed.length).toBe(12 + 16 + 6);
    expect(sealed.includes(Buffer.from("042137"))).toBe(false);
    expect(secrets.decrypt(sealed, 1, context)).toBe("042137");
  });

  it("uses a fresh IV each time", () => {
    const a = secrets.encrypt("042137", context);
    const b = secrets.encrypt("042137", context);
    expect(a.equals(b)).toBe(false);
    expect(secrets.decrypt(b, 1, context)).toBe("042137");
  });

  it("never repeats an IV, across many refills of its random pool", () => {
    const ivs = new Set<string>();
    for (let i = 0; i < 3000; i++) ivs.add(secrets.encrypt("042137", context).subarray(0, 12).toString("hex"));
    expect(ivs.size).toBe(3000);
  });

  it("fails on a different context (AAD)", () => {
    const sealed = secrets.encrypt("042137", context);
    expect(() => secrets.decrypt(sealed, 1, "<other@otp.localhost>")).toThrow();
  });

  it("fails on tampered ciphertext, tag or IV", () => {
    const sealed = secrets.encrypt("042137", context);
    for (const index of [0, 12, sealed.length - 1]) {
      const tampered = Buffer.from(sealed);
      tampered[index]! ^= 0x01;
      expect(() => secrets.decrypt(tampered, 1, context), `byte ${index}`).toThrow();
    }
    expect(() => secrets.decrypt(sealed.subarray(0, 20), 1, context)).toThrow();
  });

  it("fails under a different pepper with the same id", () => {
    const sealed = secrets.encrypt("042137", context);
    const impostor = new Secrets({ id: 1, secret: "yet-another-pepper-0123456789abcdef" });
    expect(() => impostor.decrypt(sealed, 1, context)).toThrow();
  });

  it("decrypts what an older pepper sealed after rotation", () => {
    const sealed = secrets.encrypt("042137", context);
    const rotated = new Secrets(NEW, [OLD]);
    expect(rotated.decrypt(sealed, 1, context)).toBe("042137");
    expect(() => rotated.decrypt(sealed, 2, context)).toThrow();
    expect(rotated.decrypt(rotated.encrypt("777777", context), 2, context)).toBe("777777");
  });
});

describe("Secrets construction", () => {
  it("refuses a previous pepper with the current pepper's id", () => {
    expect(() => new Secrets({ id: 1, secret: "A".repeat(32) }, [{ id: 1, secret: "B".repeat(32) }])).toThrow(/twice/);
  });
});
