// Deadlines (grpc-timeout, connect-timeout-ms) reach the database: a call
// that carries one runs with its signal handed to storage, which cancels the
// statement under way when the deadline passes (the caller then gets
// deadline_exceeded). Calls without a deadline run as they are.
import type { Interceptor } from "@connectrpc/connect";

/** Runs fn with the signal carried to the statements it issues (storage provides it). */
export type CarrySignal = <T>(signal: AbortSignal, fn: () => T) => T;

export function deadlineInterceptor(carry: CarrySignal): Interceptor {
  return (next) => (req) => {
    if (!req.header.has("grpc-timeout") && !req.header.has("connect-timeout-ms")) return next(req);
    return carry(req.signal, () => next(req));
  };
}
