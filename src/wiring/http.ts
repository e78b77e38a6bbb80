// The transport side of the composition root: the RPC services, REST, the
// platform services (health, reflection), the HTTP handler and the one port.
import type { Logger } from "pino";
import { Health } from "../../gen/health/v1/health_pb.js";
import type { Config } from "../config.js";
import type { Secrets } from "../domain/secrets.js";
import type { DemoCredentials } from "../storage/dev-state.js";
import type { Db } from "../storage/db.js";
import { isMigrated } from "../storage/migrate.js";
import { runWithStatementSignal } from "../storage/statement-deadline.js";
import type { Tracing } from "../observability/tracing.js";
import { createServices } from "../services.js";
import { clientAddressResolver, trustedProxyTest } from "../transport/client-address.js";
import { callInfoKey } from "../transport/context.js";
import { createCors } from "../transport/cors.js";
import { healthServiceImpl, Readiness } from "../transport/health.js";
import { contextValuesFor, createHttpHandler } from "../transport/http-handler.js";
import { deadlineInterceptor } from "../transport/interceptors/deadline.js";
import { createOnePortServer, type OnePortServer } from "../transport/one-port.js";
import { createSendGate } from "../transport/send-gate.js";
import { DescriptorIndex, reflectionServices, reflectionV1AlphaImpl, reflectionV1Impl } from "../transport/reflection.js";
import { RestRouter, type NodeRequest, type NodeResponse } from "../transport/rest.js";
import { createRpcAdapter } from "../transport/rpc-adapter.js";
import { TransportError } from "../transport/transport-error.js";
import { loadApiDocs } from "../web/api-docs.js";
import { loadWebAssets } from "../web/assets.js";
import type { Delivery } from "./delivery.js";

export interface HttpParts {
  readonly config: Config;
  readonly db: Db;
  readonly secrets: Secrets;
  readonly logger: Logger;
  readonly adminToken: string | undefined;
  readonly delivery: Delivery;
  readonly demo: DemoCredentials | undefined;
  readonly embedded: boolean;
  readonly tracing: Tracing | undefined;
  readonly migrationCount: number;
  readonly shuttingDown: () => boolean;
}

export interface Http {
  readonly rest: RestRouter;
  readonly readiness: Readiness;
  readonly onePort: OnePortServer;
}

export async function wireHttp(parts: HttpParts): Promise<Http> {
  const { config, db, logger, delivery, tracing } = parts;
  const { metrics, worker } = delivery;
  const { services, interceptors } = await createServices(
    db,
    config,
    parts.secrets,
    logger,
    parts.adminToken,
    [metrics.interceptor(), deadlineInterceptor(runWithStatementSignal)],
    worker,
    delivery.admission,
  );
  const clientAddressOf = clientAddressResolver(config.trustProxy);
  const contextValues = (req: NodeRequest) => contextValuesFor(req, clientAddressOf);
  const rest = new RestRouter(services.map((s) => s.spec), { interceptors, maxBodyBytes: config.maxBodyBytes, logger, contextValues });
  // Unknown paths, also on the Connect, gRPC and gRPC-Web side.
  const notFound = (req: NodeRequest, res: NodeResponse) => {
    const url = new URL(`http://localhost${req.url ?? "/"}`);
    void rest.fail(rest.shapeForPath(url.pathname), req, res, new TransportError("route_not_found", `No route for ${req.method} ${url.pathname}.`));
  };
  // One readiness for /readyz and grpc.health.v1: the database answers
  // (and is migrated) within a second, and the server is not shutting down.
  const readiness = new Readiness(
    async () =>
      !parts.shuttingDown() &&
      (await Promise.race([
        isMigrated(db, parts.migrationCount).catch(() => false),
        new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 1_000).unref()),
      ])),
    config.platform.healthPollMs,
  );
  // Health and reflection describe the server; they take no credentials
  // and run outside the RPC interceptors (auth, validation, errors).
  const platformServices = [Health, ...(config.platform.reflection ? reflectionServices : [])];
  const described = new DescriptorIndex([...services.map((s) => s.service), ...platformServices]);
  const connect = createRpcAdapter({
    routes: (router) => {
      for (const s of services) s.addTo(router);
      router.service(Health, healthServiceImpl(readiness, described.serviceNames), { interceptors: [] });
      if (config.platform.reflection) {
        router.service(reflectionServices[0], reflectionV1Impl(described), { interceptors: [] });
        router.service(reflectionServices[1], reflectionV1AlphaImpl(described), { interceptors: [] });
      }
    },
    interceptors,
    readMaxBytes: config.maxBodyBytes,
    contextValues,
    fallback: notFound,
    shortcut: services.map((s) => s.spec),
  });

  const handler = createHttpHandler({
    rest,
    connect,
    metrics,
    metricsToken: config.metricsToken,
    // Delivery counters tell who is a customer: public only in embedded development.
    metricsOpenWithoutToken: parts.embedded,
    devMailbox: delivery.devMailbox,
    maxBodyBytes: config.maxBodyBytes,
    clientAddressOf,
    cors: createCors(config.allowedOrigins),
    web: { assets: await loadWebAssets(), businessId: parts.demo?.business_id ?? null },
    apiDocs: await loadApiDocs(),
    logger,
    ready: () => readiness.check(),
    traceIdOf: tracing ? (req) => tracing.traceIdOf(req) : undefined,
    sendGate: createSendGate(delivery.admission, rest, logger, (method, req) =>
      metrics.refusedAtTheDoor(method.name, contextValues(req).get(callInfoKey).protocol),
    ),
  });

  const served = tracing
    ? tracing.traceRequests(handler, (method, pathname) => rest.lookup(pathname).find((f) => f.route.verb === method)?.route.template)
    : handler;
  const onePort = createOnePortServer(served, {
    sniffTimeoutMs: config.sniffTimeoutMs,
    requestTimeoutMs: config.requestTimeoutMs,
    maxConcurrentStreams: config.http2MaxConcurrentStreams,
    maxConnections: config.maxConnections,
    maxConnectionsPerClient: config.maxConnectionsPerClient,
    maxSessionsPerClient: config.maxSessionsPerClient,
    maxStreamsPerClient: config.maxStreamsPerClient,
    isTrustedProxy: trustedProxyTest(config.trustProxy),
  });
  return { rest, readiness, onePort };
}
