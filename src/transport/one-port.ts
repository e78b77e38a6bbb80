// One cleartext port for HTTP/1.1 and HTTP/2 (h2c with prior knowledge, as
// gRPC uses). Node serves each on its own, so every new connection is
// sniffed: if it opens with the HTTP/2 connection preface it goes to the
// HTTP/2 server, otherwise to the HTTP/1.1 one. A connection that says
// nothing within the timeout is closed.
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

type Handler = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => void;

export interface OnePortOptions {
  readonly sniffTimeoutMs: number;
  /** Whole-request bound for HTTP/1.1 (slow or trickling clients). */
  readonly requestTimeoutMs: number;
}

export interface OnePortServer {
  readonly server: net.Server;
  /** Stops accepting, lets in-flight requests finish, then closes idle connections. */
  close(graceMs: number): Promise<void>;
}

export function createOnePortServer(handler: Handler, options: OnePortOptions): OnePortServer {
  const h1 = http.createServer({ requestTimeout: options.requestTimeoutMs, headersTimeout: Math.min(options.requestTimeoutMs, 10_000) }, handler as never);
  h1.keepAliveTimeout = 5_000;
  // Node enforces headersTimeout/requestTimeout and tracks idle connections
  // only once a server has emitted "listening"; this one never listens
  // itself (sockets are handed to it), so start that tracking now.
  h1.emit("listening");
  const h2 = http2.createServer({}, handler as never);
  // An HTTP/2 session idle past the request bound is closed.
  h2.setTimeout(options.requestTimeoutMs);
  const sockets = new Set<net.Socket>();
  const sessions = new Set<http2.Http2Session>();
  h2.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });

  const server = net.createServer((socket) => {
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
