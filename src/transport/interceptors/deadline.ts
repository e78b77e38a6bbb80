// Deadlines (grpc-timeout, connect-timeout-ms) reach the database: a call
// that carries one runs with its signal handed to storage, which cancels the
// statement under way when the deadline passes (the caller then gets
// deadline_exceeded). Calls without a deadline run as they are.
//
// Except the legacy portal's public RPCs: whether their work runs to its end
// must not depend on the caller. A customer's send (or exchange) does more
// than a stranger's, so a deadline set between the two would cancel
// customers' calls alone, answering them deadline_exceeded and leaving
// their limits uncharged: an oracle by status where the answer's time is
// already hidden by the response floor. Their work is bounded by the
// server's own statement timeout instead.
import type { Interceptor } from "@connectrpc/connect";
import { ApiContract, contractOf } from "../contract.js";

/** Runs fn with the signal carried to the statements it issues (storage provides it). */
export type CarrySignal = <T>(signal: AbortSignal, fn: () => T) => T;

export function deadlineInterceptor(carry: CarrySignal): Interceptor {
  return (next) => (req) => {
    if (!req.header.has("grpc-timeout") && !req.header.has("connect-timeout-ms")) return next(req);
    if (contractOf(req.method) === ApiContract.LEGACY) return next(req);
    return carry(req.signal, () => next(req));
  };
}
