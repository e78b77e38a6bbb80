// Checking a presented passcode (NIST SP 800-63B §5.1.3 style): single use,
// a bounded number of tries per code, a lock on an email after too many
// consecutive failures, constant-time comparison against the keyed hash.
// The decision is a pure function of the email's state; the store applies it
// inside one transaction that holds the email's row lock, so concurrent
// submissions of one code cannot both succeed.
import type { Secrets } from "./secrets.js";

export interface StoredCode {
  readonly id: string;
  readonly codeHash: Buffer;
  readonly keyId: number;
  readonly expiresAt: number;
  readonly usedAt: number | null;
  readonly supersededAt: number | null;
  readonly exhaustedAt: number | null;
  readonly failedAttempts: number;
  readonly ipAddress: string | null;
  readonly userAgent: string | null;
}

export interface EmailState {
  readonly tenantId: string;
  readonly emailId: string;
  readonly userId: string;
  readonly address: string;
  readonly lockedUntil: number | null;
  readonly consecutiveFailures: number;
  /** The newest codes for this email, newest first. */
  readonly codes: readonly StoredCode[];
}

export interface AttemptLimits {
  readonly perCode: number;
  readonly lockThreshold: number;
  readonly lockMinutes: number;
}

export interface ClientMatch {
  readonly ipAddress?: string;
  readonly userAgent?: string;
}

export type Verdict =
  | { readonly kind: "ok"; readonly codeId: string }
  /** No such email, or not the right code: indistinguishable to callers. */
  | { readonly kind: "wrong"; readonly codeId: string | undefined }
  /** The right code, but expired, used, superseded or out of tries. */
  | { readonly kind: "stale"; readonly why: "expired" | "used" | "superseded" | "exhausted" }
  /** The right code from a client that does not match the one it was sent to. */
  | { readonly kind: "client_mismatch"; readonly codeId: string; readonly field: "ip_address" | "user_agent" }
  | { readonly kind: "locked"; readonly until: number };

/** What to write after a failed attempt. */
export interface FailureEffects {
  /** The live code whose try count goes up, if the attempt was against it. */
  readonly codeId: string | undefined;
  readonly exhaustCode: boolean;
  /** Whether the failure counts towards the email's lock. */
  readonly countsTowardLock: boolean;
  /** Set when this failure locks the email. */
  readonly lockUntil: number | null;
}

export function judgeAttempt(
  state: EmailState | undefined,
  code: string,
  now: number,
  secrets: Secrets,
  match: ClientMatch = {},
): Verdict {
  if (!state) {
    // Spend the same hashing work as a real comparison.
    secrets.codeMatches(Buffer.alloc(32), secrets.keyId, "0", "", code);
    return { kind: "wrong", codeId: undefined };
  }
  if (state.lockedUntil !== null && state.lockedUntil > now) return { kind: "locked", until: state.lockedUntil };
  const matches = (c: StoredCode) => secrets.codeMatches(c.codeHash, c.keyId, state.tenantId, state.address, code);
  const latest = state.codes[0];
  if (!latest) return { kind: "wrong", codeId: undefined };
  const live = latest.usedAt === null && latest.supersededAt === null && latest.exhaustedAt === null;
  if (live && latest.expiresAt > now) {
    if (!matches(latest)) {
      return state.codes.slice(1).some(matches) ? { kind: "stale", why: "superseded" } : { kind: "wrong", codeId: latest.id };
    }
    if (match.ipAddress !== undefined && match.ipAddress !== latest.ipAddress) {
      return { kind: "client_mismatch", codeId: latest.id, field: "ip_address" };
    }
    if (match.userAgent !== undefined && match.userAgent !== latest.userAgent) {
      return { kind: "client_mismatch", codeId: latest.id, field: "user_agent" };
    }
    return { kind: "ok", codeId: latest.id };
  }
  const hit = state.codes.find(matches);
  if (!hit) return { kind: "wrong", codeId: undefined };
  const why =
    hit.usedAt !== null ? "used" : hit.exhaustedAt !== null ? "exhausted" : hit.supersededAt !== null ? "superseded" : "expired";
  return { kind: "stale", why };
}

/**
 * The bookkeeping a non-ok verdict causes. Only a try at the live code
 * counts towards the email's lock: with no live code there is nothing to
 * guess, and counting such tries would let anyone lock a customer out with
 * a hundred requests and no mail sent. So locking an email takes
 * lockThreshold / perCode codes actually sent to it, which the per-address
 * send limits and daily cap bound.
 */
export function failureEffects(state: EmailState, verdict: Verdict, now: number, limits: AttemptLimits): FailureEffects {
  const codeId = verdict.kind === "wrong" || verdict.kind === "client_mismatch" ? verdict.codeId : undefined;
  const code = codeId === undefined ? undefined : state.codes.find((c) => c.id === codeId);
  const exhaustCode = code !== undefined && code.failedAttempts + 1 >= limits.perCode;
  const countsTowardLock = code !== undefined;
  const lock = countsTowardLock && state.consecutiveFailures + 1 >= limits.lockThreshold;
  return { codeId, exhaustCode, countsTowardLock, lockUntil: lock ? now + limits.lockMinutes * 60_000 : null };
}
