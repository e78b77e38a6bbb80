// OpenTelemetry traces, on only when an OTLP endpoint is configured (see
// config.ts for the standard OTEL_* variables it reads). Then every request
// is a SERVER span that continues the caller's W3C traceparent/tracestate,
// on every protocol (REST, Connect, gRPC, gRPC-Web: all arrive here as
// HTTP); storage adds a span per Postgres statement and the mail worker one
// per delivery and SMTP transaction, and spans are batched to the collector
// over OTLP/HTTP (protobuf or JSON). Off, nothing is registered: the
// @opentelemetry/api calls elsewhere are no-ops and the request path is
// untouched. Spans carry names, routes, statuses and SQL text with its
// placeholders: never a query string, a header value, a code or an address.
// The SDK itself (tracing-sdk.ts) is imported only when tracing is on.
import type { TracingConfig } from "../config.js";
import type { Tracing } from "./tracing-sdk.js";

export type { Tracing } from "./tracing-sdk.js";

// The SDK registers process-wide (context manager, propagator, provider):
// servers built in one process (tests) share one, stopped with the last.
let shared: { tracing: Promise<Tracing>; users: number } | undefined;

/** Starts tracing as configured; undefined when it is off. */
export async function startTracing(config: TracingConfig | undefined): Promise<Tracing | undefined> {
  if (!config) return undefined;
  if (!shared) shared = { tracing: import("./tracing-sdk.js").then((sdk) => sdk.createTracing(config)), users: 0 };
  shared.users++;
  const tracing = await shared.tracing;
  let stopped = false;
  return {
    traceRequests: tracing.traceRequests,
    traceIdOf: tracing.traceIdOf,
    async shutdown() {
      if (stopped) return;
      stopped = true;
      if (--shared!.users === 0) {
        shared = undefined;
        await tracing.shutdown();
      }
    },
  };
}

