// What to do after a delivery attempt failed. Permanent refusals (SMTP 5xx)
// end the row at once; anything else is retried with exponential backoff and
// equal jitter (half fixed, half random, so waits always grow: ~1 s, 2 s,
// 4 s … capped at 30 s) while the code is still valid. The attempts limit is
// only a backstop.

export type FailedDelivery =
  | { readonly action: "fail"; readonly why: "rejected" | "attempts" }
  | { readonly action: "expire" }
  | { readonly action: "retry"; readonly delayMs: number };

export interface FailedAttempt {
  /** Attempts so far, the failed one included. */
  readonly attempts: number;
  readonly expiresAt: number;
  /** The SMTP reply code, when the server answered. */
  readonly smtpStatus: number | undefined;
}

const FIRST_DELAY_MS = 1_000;
const MAX_DELAY_MS = 30_000;

/** The backoff before retry number `attempts` + 1; `random` in [0, 1). */
export function retryDelay(attempts: number, random: number): number {
  const base = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** (attempts - 1));
  return base / 2 + random * (base / 2);
}

export function afterFailedDelivery(attempt: FailedAttempt, now: number, maxAttempts: number, random: number): FailedDelivery {
  if (attempt.smtpStatus !== undefined && attempt.smtpStatus >= 500) return { action: "fail", why: "rejected" };
  if (attempt.attempts >= maxAttempts) return { action: "fail", why: "attempts" };
  const delayMs = retryDelay(attempt.attempts, random);
  if (now + delayMs >= attempt.expiresAt) return { action: "expire" };
  return { action: "retry", delayMs };
}
