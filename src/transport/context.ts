// What the transport learns about a call before any handler runs, carried in
// Connect's context values for every protocol, REST included.
import { randomUUID } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import { createContextKey, type HandlerContext } from "@connectrpc/connect";
import type { Tenant } from "../domain/tenants.js";
import type { ClientAddressOf } from "./client-address.js";

export interface CallInfo {
  /** Random part of the request id; see requestId(). */
  readonly id: string;
  /** The client's address: the socket peer, or X-Forwarded-For behind a trusted proxy. */
  readonly clientIp: string | undefined;
  readonly userAgent: string | undefined;
  /** rest, grpc, grpc-web or connect; for metrics and logs. */
  readonly protocol: string;
}

export const callInfoKey = createContextKey<CallInfo>({ id: "", clientIp: undefined, userAgent: undefined, protocol: "in-process" });

/** The authenticated project, set by the auth interceptor on Stytch methods. */
export const tenantKey = createContextKey<Tenant | undefined>(undefined);

export function newCallInfo(
  headers: IncomingHttpHeaders,
  socketAddress: string | undefined,
  clientAddressOf: ClientAddressOf,
  rest: boolean,
): CallInfo {
  const clientIp = clientAddressOf(socketAddress, headers["x-forwarded-for"]);
  const ua = headers["user-agent"];
  const type = String(headers["content-type"] ?? "");
  const protocol = rest ? "rest" : type.startsWith("application/grpc-web") ? "grpc-web" : type.startsWith("application/grpc") ? "grpc" : "connect";
  return { id: randomUUID(), clientIp, userAgent: typeof ua === "string" ? ua.slice(0, 512) : undefined, protocol };
}

/** Stytch-style request id; `live` once a live project is known. */
export function requestIdOf(values: HandlerContext["values"]): string {
  const tenant = values.get(tenantKey);
  return `request-id-${tenant?.live ? "live" : "test"}-${values.get(callInfoKey).id}`;
}
