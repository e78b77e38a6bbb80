// HTTP/1.1 by hand over a TCP socket, for what fetch will not do: send a
// request in pieces, trickle it, or send bytes no client library would.
import net from "node:net";

export interface RawResponse {
  readonly status: number;
  readonly head: string;
  readonly body: string;
  /** Milliseconds from connect to the response (or close). */
  readonly ms: number;
  /** How the exchange ended: a full response, the server closing, a reset, or our timeout. */
  readonly ending: "response" | "closed" | "reset" | "timeout";
}

export interface RawConnection {
  readonly socket: net.Socket;
  write(data: string | Buffer): Promise<void>;
  /** Resolves when a whole response has arrived or the connection ends. */
  readonly response: Promise<RawResponse>;
  /** Resolves when the socket is closed (by either side), with ms since connect. */
  readonly closed: Promise<number>;
}

export async function rawConnect(port: number, timeoutMs = 120_000): Promise<RawConnection> {
  const socket = net.connect({ host: "127.0.0.1", port });
  socket.setNoDelay(true);
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  const t0 = performance.now();
  let buffer = Buffer.alloc(0);
  let reset = false;
  socket.on("error", () => {
    reset = true;
  });
  const closed = new Promise<number>((resolve) => socket.once("close", () => resolve(performance.now() - t0)));
  const response = new Promise<RawResponse>((resolve) => {
    let done = false;
    const finish = (ending: RawResponse["ending"]) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      const text = buffer.toString("latin1");
      const split = text.indexOf("\r\n\r\n");
      const head = split >= 0 ? text.slice(0, split) : text;
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0);
      resolve({ status, head, body: split >= 0 ? text.slice(split + 4) : "", ms: performance.now() - t0, ending });
    };
    const timer = setTimeout(() => {
      finish("timeout");
      socket.destroy();
    }, timeoutMs);
    socket.on("data", (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      const text = buffer.toString("latin1");
      const split = text.indexOf("\r\n\r\n");
      if (split < 0) return;
      const length = /\r\ncontent-length:\s*(\d+)/i.exec(text.slice(0, split))?.[1];
      if (length !== undefined && buffer.length >= split + 4 + Number(length)) finish("response");
    });
    void closed.then(() => finish(buffer.length > 0 ? "response" : reset ? "reset" : "closed"));
  });
  return {
    socket,
    response,
    closed,
    write: (data) =>
      new Promise<void>((resolve) => {
        if (socket.destroyed) return resolve();
        socket.write(data, () => resolve());
      }),
  };
}
