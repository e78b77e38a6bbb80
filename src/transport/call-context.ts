// The HandlerContext of one unary call (REST route or the unary shortcut),
// built directly rather than by connect-es's createHandlerContext. That one
// links three AbortControllers (deadline, request, the call's own) through
// event listeners, copies each header set into a new Headers, and on abort
// dispatches through all of them: over twice the CPU of one controller and
// the headers as given, on every call (bench/call-context-micro.ts). The
// context is the same public shape, so interceptors and handlers cannot
// tell them apart.
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, createContextValues, type ContextValues, type HandlerContext } from "@connectrpc/connect";
import type { NodeResponse } from "./http-io.js";

export interface CallContextInit {
  readonly service: DescService;
  readonly method: DescMethod;
  readonly protocolName: string;
  readonly requestMethod: string;
  readonly url: string;
  /** The caller's deadline, ms from now; none when undefined. */
  readonly timeoutMs?: number;
  /** Taken as is, not copied. */
  readonly requestHeader: Headers;
  readonly responseHeader?: Headers;
  readonly responseTrailer?: Headers;
  readonly contextValues?: ContextValues;
}

/** A call's context and the one way to end it: aborting its signal (the deadline's timer cleared). */
export interface CallContext extends HandlerContext {
  abort(reason?: unknown): void;
}

export function createCallContext(init: CallContextInit): CallContext {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let deadline: number | undefined;
  if (init.timeoutMs !== undefined) {
    deadline = Date.now() + init.timeoutMs;
    const expire = () => {
      if (!controller.signal.aborted) controller.abort(new ConnectError("the operation timed out", Code.DeadlineExceeded));
    };
    if (init.timeoutMs <= 0) expire();
    else timer = setTimeout(expire, init.timeoutMs);
  }
  return {
    service: init.service,
    method: init.method,
    protocolName: init.protocolName,
    requestMethod: init.requestMethod,
    url: init.url,
    signal: controller.signal,
    timeoutMs: deadline === undefined ? () => undefined : () => deadline - Date.now(),
    requestHeader: init.requestHeader,
    responseHeader: init.responseHeader ?? new Headers(),
    responseTrailer: init.responseTrailer ?? new Headers(),
    values: init.contextValues ?? createContextValues(),
    abort(reason?: unknown) {
      clearTimeout(timer);
      if (!controller.signal.aborted) controller.abort(reason);
    },
  };
}

/**
 * Aborts the call (with `reason`) when its response closes before the answer
 * was ended: the caller went away. An answered call closes too and is left
 * alone. writableEnded, not writableFinished: over HTTP/2 that one is the
 * stream's, true once the client's reset closed it.
 */
export function abortWhenCallerLeaves(ctx: CallContext, res: NodeResponse, reason?: unknown): void {
  res.once("close", () => {
    if (!res.writableEnded) ctx.abort(reason);
  });
}
