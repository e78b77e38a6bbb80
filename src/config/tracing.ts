// Tracing settings: the OpenTelemetry SDK's standard OTEL_* variables.
import { ConfigError } from "./config-error.js";
import type { TracingConfig } from "./types.js";

const SAMPLERS = ["always_on", "always_off", "traceidratio", "parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio"];

/**
 * The OpenTelemetry SDK's standard variables for traces over OTLP/HTTP. On
 * when an OTLP endpoint is set (and neither OTEL_SDK_DISABLED nor
 * OTEL_TRACES_EXPORTER=none says otherwise); off, no SDK is started.
 */
export function parseTracing(
  optional: (name: string) => string | undefined,
  int: (name: string, fallback: number, min: number, max: number) => number,
): TracingConfig | undefined {
  if (/^true$/i.test(optional("OTEL_SDK_DISABLED") ?? "")) return undefined;
  const exporter = optional("OTEL_TRACES_EXPORTER") ?? "otlp";
  if (exporter === "none") return undefined;
  if (exporter !== "otlp") throw new ConfigError(`OTEL_TRACES_EXPORTER must be otlp or none, got "${exporter}"`);
  const tracesEndpoint = optional("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
  const baseEndpoint = optional("OTEL_EXPORTER_OTLP_ENDPOINT");
  if (tracesEndpoint === undefined && baseEndpoint === undefined) return undefined;
  const endpoint = tracesEndpoint ?? `${baseEndpoint!.replace(/\/+$/, "")}/v1/traces`;
  if (!/^https?:\/\/\S+$/.test(endpoint)) {
    throw new ConfigError(`${tracesEndpoint ? "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" : "OTEL_EXPORTER_OTLP_ENDPOINT"} must be an http:// or https:// URL`);
  }
  const protocolVar = optional("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") !== undefined ? "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL" : "OTEL_EXPORTER_OTLP_PROTOCOL";
  const protocol = optional(protocolVar) ?? "http/protobuf";
  if (protocol !== "http/protobuf" && protocol !== "http/json") {
    throw new ConfigError(`${protocolVar} must be http/protobuf or http/json, got "${protocol}"`);
  }
  const sampler = (optional("OTEL_TRACES_SAMPLER") ?? "parentbased_always_on").toLowerCase();
  if (!SAMPLERS.includes(sampler)) throw new ConfigError(`OTEL_TRACES_SAMPLER must be one of ${SAMPLERS.join(", ")}`);
  // The traces-specific variable wins; errors name the one read.
  const headersVariable = optional("OTEL_EXPORTER_OTLP_TRACES_HEADERS") !== undefined ? "OTEL_EXPORTER_OTLP_TRACES_HEADERS" : "OTEL_EXPORTER_OTLP_HEADERS";
  const rawArg = optional("OTEL_TRACES_SAMPLER_ARG");
  let samplerArg: number | undefined;
  if (rawArg !== undefined && sampler.endsWith("traceidratio")) {
    samplerArg = Number(rawArg);
    if (!Number.isFinite(samplerArg) || samplerArg < 0 || samplerArg > 1) {
      throw new ConfigError(`OTEL_TRACES_SAMPLER_ARG must be a ratio between 0 and 1, got "${rawArg}"`);
    }
  }
  return {
    endpoint,
    protocol,
    headers: parsePairs(headersVariable, optional(headersVariable)),
    serviceName: optional("OTEL_SERVICE_NAME") ?? "otp-service",
    resourceAttributes: parsePairs("OTEL_RESOURCE_ATTRIBUTES", optional("OTEL_RESOURCE_ATTRIBUTES")),
    sampler,
    samplerArg,
    scheduleDelayMs: int("OTEL_BSP_SCHEDULE_DELAY", 5_000, 1, 600_000),
    exportTimeoutMs: int("OTEL_EXPORTER_OTLP_TIMEOUT", 10_000, 1, 600_000),
  };
}

/** "key1=value1,key2=value2", values percent-decoded (the OTel format for headers and resource attributes). */
function parsePairs(name: string, raw: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (raw === undefined) return out;
  for (const pair of raw.split(",")) {
    if (pair.trim() === "") continue;
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new ConfigError(`${name} must be a comma-separated list of key=value`);
    const key = pair.slice(0, eq).trim();
    try {
      out[decodeURIComponent(key)] = decodeURIComponent(pair.slice(eq + 1).trim());
    } catch {
      // The key only: a header's value is often a credential, and this message goes to the log.
      throw new ConfigError(`${name}: the value of "${key}" is not valid percent-encoding`);
    }
  }
  return out;
}
