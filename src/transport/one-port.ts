// One cleartext port for HTTP/1.1 and HTTP/2 (h2c with prior knowledge, as
// gRPC uses). Node serves each on its own, so every new connection is
// sniffed: if it opens with the HTTP/2 connection preface it goes to the
// HTTP/2 server, otherwise to the HTTP/1.1 one. A connection that says
// nothing within the timeout is closed.
//
// What one client can hold is bounded: connections per client and in all
// (an HTTP/2 session is one connection), streams per session (advertised in
// SETTINGS and enforced), and time: each HTTP/2 stream must have sent its
// whole request within the request bound, as each HTTP/1.1 request must, or
// it is reset. A stream opened and left half-open costs memory until then.
// HTTP/1.1 requests in progress are bounded too: a client may pipeline
// request after request on one connection without reading the answers, and
// Node hands each to the handler as soon as it is parsed.
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import { clientKey } from "../domain/client-key.js";
import { PerKeyCounter } from "./per-key-counter.js";

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/**
 * HTTP/1.1 requests one connection may have in progress (pipelined); past
 * it the connection is closed (its answers are in order, so a refusal could
 * only be sent after the rest). Browsers do not pipeline at all.
 */
export const PIPELINED_PER_CONNECTION = 16;

type Handler = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => void;

export interface OnePortOptions {
  readonly sniffTimeoutMs: number;
  /**
   * Whole-request bound (slow or trickling clients): an HTTP/1.1 request, or
   * an HTTP/2 stream's request side, not received in full by then is cut.
   */
  readonly requestTimeoutMs: number;
  /** Streams one HTTP/2 session may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS). */
  readonly maxConcurrentStreams: number;
  /** Connections (HTTP/2 sessions included) open at once, in all. */
  readonly maxConnections: number;
  /** Connections open at once from one client address (IPv6: one /64); 0: no per-client cap. */
  readonly maxConnectionsPerClient: number;
  /** HTTP/2 sessions open at once from one client address; 0: no per-client cap. */
  readonly maxSessionsPerClient: number;
  /** HTTP/2 streams open at once from one client address, over all its sessions; 0: no per-client cap. */
  readonly maxStreamsPerClient: number;
  /** Peers exempt from the per-client caps: the trusted proxies (see TRUST_PROXY). */
  readonly isTrustedProxy: (address: string) => boolean;
}

export interface OnePortServer {
  readonly server: net.Server;
  /** Stops accepting, lets in-flight requests finish, then closes idle connections. */
  close(graceMs: number): Promise<void>;
}

export function createOnePortServer(handler: Handler, options: OnePortOptions): OnePortServer {
  /** HTTP/2 streams open per client. */
  const streamsPerClient = new PerKeyCounter();
  /**
   * HTTP/1.1 requests in progress per client, held to the same cap as its
   * streams but counted apart: a client whose streams are all taken (say,
   * left half-open) still gets answers over a new HTTP/1.1 connection.
   */
  const requestsPerClient = new PerKeyCounter();
  /** Each connection's client key (none for trusted proxies), found once when it opened. */
  const clientOf = new WeakMap<net.Socket, string>();
  const inProgress = new WeakMap<net.Socket, number>();
  const h1 = http.createServer({ requestTimeout: options.requestTimeoutMs, headersTimeout: Math.min(options.requestTimeoutMs, 10_000) }, (req, res) => {
    const socket = req.socket;
    const onConnection = (inProgress.get(socket) ?? 0) + 1;
    if (onConnection > PIPELINED_PER_CONNECTION) return void socket.destroy();
    const key = options.maxStreamsPerClient > 0 ? clientOf.get(socket) : undefined;
    if (key !== undefined && !requestsPerClient.take(key, options.maxStreamsPerClient)) return void socket.destroy();
    inProgress.set(socket, onConnection);
    res.once("close", () => {
      inProgress.set(socket, (inProgress.get(socket) ?? 1) - 1);
      if (key !== undefined) requestsPerClient.give(key);
    });
    handler(req, res);
  });
  h1.keepAliveTimeout = 5_000;
  // Node enforces headersTimeout/requestTimeout and tracks idle connections
  // only once a server has emitted "listening"; this one never listens
  // itself (sockets are handed to it), so start that tracking now.
  h1.emit("listening");
  // Node refuses streams beyond the advertised maximum (REFUSED_STREAM), and
  // ends a session whose peer keeps opening them regardless.
  // Streams refused for their client's cap are never handed to the handler.
  const refused = new WeakSet<http2.ServerHttp2Stream>();
  const h2 = http2.createServer({ settings: { maxConcurrentStreams: options.maxConcurrentStreams } }, (req, res) => {
    if (!refused.has(req.stream)) handler(req, res);
  });
  // An HTTP/2 session idle past the request bound is closed.
  h2.setTimeout(options.requestTimeoutMs);
  // Before the compatibility layer's own listener, which makes the request.
  h2.prependListener("stream", (stream) => {
    const peer = stream.session?.socket?.remoteAddress;
    if (options.maxStreamsPerClient > 0 && peer !== undefined && !options.isTrustedProxy(peer)) {
      const key = clientKey(peer);
      if (!streamsPerClient.take(key, options.maxStreamsPerClient)) {
        refused.add(stream);
        stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
        return;
      }
      stream.once("close", () => streamsPerClient.give(key));
    }
    cutIfIncomplete(stream, options.requestTimeoutMs);
  });
  const sockets = new Set<net.Socket>();
  const sessions = new Set<http2.Http2Session>();
  h2.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });

  const connectionsPerClient = new PerKeyCounter();
  const sessionsPerClient = new PerKeyCounter();
  const server = net.createServer((socket) => {
    const peer = socket.remoteAddress;
    // Undefined for trusted proxies: their clients are told apart later, per request.
    const key = peer !== undefined && !options.isTrustedProxy(peer) ? clientKey(peer) : undefined;
    if (key !== undefined) clientOf.set(socket, key);
    if (key !== undefined && options.maxConnectionsPerClient > 0) {
      if (!connectionsPerClient.take(key, options.maxConnectionsPerClient)) {
        socket.destroy();
        return;
      }
      socket.once("close", () => connectionsPerClient.give(key));
    }
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
    let seen: Buffer = Buffer.alloc(0);
    const timer = setTimeout(() => socket.destroy(), options.sniffTimeoutMs);
    const onData = (chunk: Buffer) => {
      seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
      const n = Math.min(seen.length, PREFACE.length);
      const isHttp2 = seen.subarray(0, n).equals(PREFACE.subarray(0, n));
      if (isHttp2 && seen.length < PREFACE.length) return; // Not sure yet.
      clearTimeout(timer);
      socket.off("data", onData);
      socket.pause();
      socket.unshift(seen);
      if (isHttp2 && key !== undefined && options.maxSessionsPerClient > 0) {
        // One HTTP/2 session carries many streams: a client needs few.
        if (!sessionsPerClient.take(key, options.maxSessionsPerClient)) {
          socket.destroy();
          return;
        }
        socket.once("close", () => sessionsPerClient.give(key));
      }
      if (isHttp2) {
        // The HTTP/2 session drains the unshifted bytes itself and then
        // reads the socket natively: resuming it here would steal data.
        h2.emit("connection", socket);
      } else {
        h1.emit("connection", socket);
        socket.resume();
      }
    };
    socket.on("data", onData);
  });

  // Beyond this, new connections are closed as they arrive.
  server.maxConnections = options.maxConnections;

  return {
    server,
    close: (graceMs) =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const session of sessions) session.close();
        // Keep-alive connections close once idle; after a grace period
        // whatever is left (a stuck or sniffing client) is cut.
        const deadline = Date.now() + graceMs;
        const sweep = setInterval(() => {
          h1.closeIdleConnections();
          if (sockets.size === 0 || Date.now() > deadline) {
            clearInterval(sweep);
            for (const s of sockets) s.destroy();
          }
        }, 50);
        h1.closeIdleConnections();
      }),
  };
}

/**
 * Resets an HTTP/2 stream whose request has not arrived in full within
 * `timeoutMs` (half-open, or trickling its body). Once the request side has
 * ended, the RPC's own deadlines apply (a server-streaming response may
 * then run on).
 */
function cutIfIncomplete(stream: http2.ServerHttp2Stream, timeoutMs: number): void {
  if (stream.endAfterHeaders) return;
  const timer = setTimeout(() => {
    if (!stream.destroyed && !stream.readableEnded) stream.close(http2.constants.NGHTTP2_CANCEL);
  }, timeoutMs);
  timer.unref();
  const done = () => clearTimeout(timer);
  stream.once("end", done);
  stream.once("close", done);
}
