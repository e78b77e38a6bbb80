// Outermost interceptor: whatever a handler or inner interceptor throws
// leaves as a Connect error built by the one error writer.
import type { Interceptor } from "@connectrpc/connect";
import type { Logger } from "pino";
import { toConnectError } from "../error-writer.js";

export function errorInterceptor(logger: Logger): Interceptor {
  return (next) => async (req) => {
    try {
      return await next(req);
    } catch (err) {
      throw toConnectError(err, logger);
    }
  };
}
