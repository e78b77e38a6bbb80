// An in-process OTLP/HTTP receiver for tests: it accepts trace exports
// (http/json or http/protobuf) and keeps each request's body as sent.
import http from "node:http";
import type { AddressInfo } from "node:net";

export interface OtlpExport {
  readonly contentType: string;
  readonly body: Buffer;
}

/** A span from an OTLP/JSON export, with its attributes flattened. */
export interface ExportedSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string;
  readonly name: string;
  readonly kind: number;
  readonly attributes: Record<string, unknown>;
}

export interface OtlpReceiver {
  readonly url: string;
  readonly exports: OtlpExport[];
  /** Every span of the JSON exports so far. */
  spans(): ExportedSpan[];
  close(): Promise<void>;
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const exports: OtlpExport[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (req.method === "POST" && req.url === "/v1/traces") {
        exports.push({ contentType: String(req.headers["content-type"] ?? ""), body: Buffer.concat(chunks) });
      }
      const json = String(req.headers["content-type"]).includes("json");
      res.writeHead(200, { "content-type": json ? "application/json" : "application/x-protobuf" });
      res.end(json ? "{}" : undefined);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    exports,
    spans() {
      const out: ExportedSpan[] = [];
      for (const e of exports) {
        if (!e.contentType.includes("json")) continue;
        const doc = JSON.parse(e.body.toString("utf8")) as {
          resourceSpans: { scopeSpans: { spans: (ExportedSpan & { attributes: { key: string; value: Record<string, unknown> }[] })[] }[] }[];
        };
        for (const rs of doc.resourceSpans ?? []) {
          for (const ss of rs.scopeSpans ?? []) {
            for (const s of ss.spans ?? []) {
              const attributes: Record<string, unknown> = {};
              for (const a of s.attributes ?? []) attributes[a.key] = Object.values(a.value)[0];
              out.push({ traceId: s.traceId, spanId: s.spanId, parentSpanId: s.parentSpanId ?? "", name: s.name, kind: s.kind, attributes });
            }
          }
        }
      }
      return out;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
