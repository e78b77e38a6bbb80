// A TCP proxy in front of the test Postgres that a test can cut: while down,
// open connections are reset and new ones refused, as when the database
// host goes away; up again, connections pass as before. It can also hold
// back what the connections already open send, while new ones pass at once.
import net from "node:net";
import { setTimeout as delay } from "node:timers/promises";

export interface TcpProxy {
  /** The target URL with host and port replaced by the proxy's. */
  readonly url: string;
  down(): void;
  up(): void;
  /** From now on, what the connections open now send reaches Postgres `ms` late; connections opened later are not slowed. */
  slowOpenConnections(ms: number): void;
  close(): Promise<void>;
}

export async function startTcpProxy(targetUrl: string): Promise<TcpProxy> {
  const target = new URL(targetUrl);
  const sockets = new Set<net.Socket>();
  let isDown = false;
  let slowBefore = 0;
  let slowMs = 0;
  const server = net.createServer((client) => {
    if (isDown) return client.destroy();
    const openedAt = Date.now();
    const upstream = net.connect(Number(target.port || 5432), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.once("close", () => sockets.delete(s));
      s.on("error", () => {
        client.destroy();
        upstream.destroy();
      });
    }
    upstream.pipe(client);
    // In order: a chunk held back holds back the ones after it.
    let pending = Promise.resolve();
    let held = 0;
    client.on("data", (chunk: Buffer) => {
      const wait = openedAt < slowBefore ? slowMs : 0;
      if (wait === 0 && held === 0) return void upstream.write(chunk);
      held++;
      pending = pending
        .then(() => delay(wait))
        .then(() => {
          held--;
          upstream.write(chunk);
        });
    });
    client.on("end", () => void pending.then(() => upstream.end()));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = new URL(targetUrl);
  url.hostname = "127.0.0.1";
  url.port = String((server.address() as net.AddressInfo).port);
  return {
    url: url.toString(),
    down() {
      isDown = true;
      for (const s of sockets) s.destroy();
    },
    up() {
      isDown = false;
    },
    slowOpenConnections(ms: number) {
      slowBefore = Date.now() + 1;
      slowMs = ms;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
