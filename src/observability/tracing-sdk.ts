// The OpenTelemetry SDK behind tracing.ts, in its own module so that it is
// loaded only when tracing is on: its packages cost the process memory
// (tens of MB of RSS) that an instance with tracing off should not pay.
import { context, propagation, trace, SpanKind, SpanStatusCode, type Span } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter as OtlpJsonExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { OTLPTraceExporter as OtlpProtoExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  TracerProvider,
  type Sampler,
} from "@opentelemetry/sdk-trace";
import type { TracingConfig } from "../config.js";

type NodeRequest = import("node:http").IncomingMessage | import("node:http2").Http2ServerRequest;
type NodeResponse = import("node:http").ServerResponse | import("node:http2").Http2ServerResponse;
type Handler = (req: NodeRequest, res: NodeResponse) => void;

export interface Tracing {
  /** Wraps the port's handler: one SERVER span per request, in the caller's trace. */
  traceRequests(handler: Handler, routeOf: (method: string, pathname: string) => string | undefined): Handler;
  /** The trace id of a request's span, for the access log line. */
  traceIdOf(req: NodeRequest): string | undefined;
  /** Exports what is buffered and stops. */
  shutdown(): Promise<void>;
}

function samplerOf(config: TracingConfig): Sampler {
  const ratio = () => new TraceIdRatioBasedSampler(config.samplerArg ?? 1);
  switch (config.sampler) {
    case "always_on":
      return new AlwaysOnSampler();
    case "always_off":
      return new AlwaysOffSampler();
    case "traceidratio":
      return ratio();
    case "parentbased_always_off":
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case "parentbased_traceidratio":
      return new ParentBasedSampler({ root: ratio() });
    default:
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
  }
}

export function createTracing(config: TracingConfig): Tracing {
  const exporterOptions = { url: config.endpoint, headers: { ...config.headers }, timeoutMillis: config.exportTimeoutMs };
  const exporter = config.protocol === "http/json" ? new OtlpJsonExporter(exporterOptions) : new OtlpProtoExporter(exporterOptions);
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ ...config.resourceAttributes, "service.name": config.serviceName }),
    sampler: samplerOf(config),
    spanProcessors: [new BatchSpanProcessor({ exporter, scheduledDelayMillis: config.scheduleDelayMs })],
  });
  const contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
  const tracer = trace.getTracer("otp-service");
  const spans = new WeakMap<NodeRequest, Span>();

  return {
    traceRequests(handler, routeOf) {
      return (req, res) => {
        const method = req.method ?? "GET";
        const pathname = (req.url ?? "/").split("?")[0]!;
        // /package.Service/Method is an RPC (gRPC, gRPC-Web, Connect); other paths are REST routes or endpoints.
        const rpc = /^\/([\w.]+)\/(\w+)$/.exec(pathname);
        const route = rpc ? undefined : routeOf(method, pathname);
        const name = rpc ? `${rpc[1]}/${rpc[2]}` : route ? `${method} ${route}` : method;
        const parent = propagation.extract(context.active(), req.headers);
        const span = tracer.startSpan(
          name,
          {
            kind: SpanKind.SERVER,
            attributes: {
              "http.request.method": method,
              ...(rpc ? { "rpc.service": rpc[1], "rpc.method": rpc[2] } : {}),
              ...(route ? { "http.route": route } : {}),
            },
          },
          parent,
        );
        spans.set(req, span);
        let ended = false;
        const end = () => {
          if (ended) return;
          ended = true;
          span.setAttribute("http.response.status_code", res.statusCode);
          const grpcStatus = (res as import("node:http").ServerResponse).getHeader("grpc-status");
          if (grpcStatus !== undefined) span.setAttribute("rpc.grpc.status_code", Number(grpcStatus));
          if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
          span.end();
        };
        res.once("finish", end);
        res.once("close", end);
        context.with(trace.setSpan(parent, span), () => handler(req, res));
      };
    },
    traceIdOf(req) {
      return spans.get(req)?.spanContext().traceId;
    },
    async shutdown() {
      await provider.shutdown().catch(() => {});
      trace.disable();
      propagation.disable();
      context.disable();
    },
  };
}
