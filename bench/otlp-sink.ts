// A trace sink for the bench's tracing variant: an HTTP server in the bench
// process that takes OTLP/HTTP exports (POST /v1/traces, protobuf or JSON),
// answers 200 at once, keeps nothing, and counts requests and bytes — so the
// run can say whether spans arrived at all, and at what cost to the service.
import { once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";

export interface OtlpSink {
  /** Base URL for OTEL_EXPORTER_OTLP_ENDPOINT. */
  readonly url: string;
  exports(): number;
  bytes(): number;
  close(): Promise<void>;
}

export async function startOtlpSink(): Promise<OtlpSink> {
  let exports = 0;
  let bytes = 0;
  const server = http.createServer((req, res) => {
    req.on("data", (c: Buffer) => (bytes += c.length));
    req.on("end", () => {
      if (req.method === "POST" && req.url?.startsWith("/v1/")) exports++;
      // An empty ExportTraceServiceResponse: a zero-length protobuf message, or {} in JSON.
      const json = (req.headers["content-type"] ?? "").includes("json");
      res.writeHead(200, { "content-type": json ? "application/json" : "application/x-protobuf" });
      res.end(json ? "{}" : "");
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    exports: () => exports,
    bytes: () => bytes,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
