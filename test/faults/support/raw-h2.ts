// HTTP/2 by hand over a TCP socket (cleartext, prior knowledge), for what
// node:http2's client will not do: ignore the server's
// SETTINGS_MAX_CONCURRENT_STREAMS, open streams and never finish them, or
// trickle a body. Frames are written directly; the header block is a fixed
// HPACK encoding (static-table and literal fields, no Huffman, no dynamic
// table), so no state needs to be kept between streams.
import net from "node:net";

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
const FRAME = { DATA: 0x0, HEADERS: 0x1, RST_STREAM: 0x3, SETTINGS: 0x4, PING: 0x6, GOAWAY: 0x7 } as const;
const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 } as const;

/** What the server did to the connection, counted as frames arrived. */
export interface H2Tally {
  /** The server's SETTINGS, by identifier (3 is MAX_CONCURRENT_STREAMS). */
  readonly settings: Map<number, number>;
  /** RST_STREAM frames received, by error code (7 is REFUSED_STREAM, 8 CANCEL, 11 ENHANCE_YOUR_CALM). */
  readonly resets: Map<number, number>;
  /** Stream id → ms after connect at which the server reset it. */
  readonly resetAt: Map<number, number>;
  /** Response HEADERS frames received. */
  responses: number;
  /** GOAWAY error code, once received. */
  goaway: number | undefined;
  closed: boolean;
  /** Ms after connect at which the socket closed. */
  closedAtMs: number | undefined;
}

export interface RawH2 {
  readonly socket: net.Socket;
  readonly tally: H2Tally;
  /** Opens stream `id` (odd, increasing) with a POST to `path`, without ending it. */
  open(id: number, path: string, contentType: string): boolean;
  /** Sends a DATA frame on stream `id`, not ending it. */
  data(id: number, payload: Buffer): boolean;
  /** Resolves when the socket has drained its write buffer (or closed). */
  drained(): Promise<void>;
  /** Resolves when the socket is closed. */
  readonly closedAt: Promise<number>;
  destroy(): void;
}

function frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head.writeUInt8(type, 3);
  head.writeUInt8(flags, 4);
  head.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([head, payload]);
}

/** An HPACK string: no Huffman, length with a 7-bit prefix (all ours are short). */
function hpackString(text: string): Buffer {
  const bytes = Buffer.from(text, "latin1");
  if (bytes.length >= 127) throw new Error("header value too long for this encoder");
  return Buffer.concat([Buffer.from([bytes.length]), bytes]);
}

/** A request header block: :method POST, :scheme http, :path, :authority, content-type, te. */
export function requestHeaderBlock(path: string, contentType: string, authority = "127.0.0.1"): Buffer {
  return Buffer.concat([
    Buffer.from([0x83]), // :method: POST (static 3)
    Buffer.from([0x86]), // :scheme: http (static 6)
    Buffer.from([0x04]), // :path, literal without indexing, name static 4
    hpackString(path),
    Buffer.from([0x01]), // :authority, name static 1
    hpackString(authority),
    Buffer.from([0x0f, 0x10]), // content-type, name static 31
    hpackString(contentType),
    Buffer.from([0x00]), // te: trailers, literal name
    hpackString("te"),
    hpackString("trailers"),
  ]);
}

export async function rawH2Connect(port: number): Promise<RawH2> {
  const socket = net.connect({ host: "127.0.0.1", port });
  socket.setNoDelay(true);
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  socket.on("error", () => {});
  const t0 = performance.now();
  const tally: H2Tally = { settings: new Map(), resets: new Map(), resetAt: new Map(), responses: 0, goaway: undefined, closed: false, closedAtMs: undefined };
  const closedAt = new Promise<number>((resolve) =>
    socket.once("close", () => {
      tally.closed = true;
      tally.closedAtMs = performance.now() - t0;
      resolve(tally.closedAtMs);
    }),
  );
  let buffer: Buffer = Buffer.alloc(0);
  socket.on("data", (chunk: Buffer) => {
    buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk]);
    while (buffer.length >= 9) {
      const length = buffer.readUIntBE(0, 3);
      if (buffer.length < 9 + length) break;
      const type = buffer.readUInt8(3);
      const flags = buffer.readUInt8(4);
      const streamId = buffer.readUInt32BE(5) & 0x7fffffff;
      const payload = buffer.subarray(9, 9 + length);
      buffer = buffer.subarray(9 + length);
      if (type === FRAME.SETTINGS && !(flags & FLAG.ACK)) {
        for (let i = 0; i + 6 <= payload.length; i += 6) tally.settings.set(payload.readUInt16BE(i), payload.readUInt32BE(i + 2));
        socket.write(frame(FRAME.SETTINGS, FLAG.ACK, 0, Buffer.alloc(0)));
      } else if (type === FRAME.PING && !(flags & FLAG.ACK)) {
        socket.write(frame(FRAME.PING, FLAG.ACK, 0, Buffer.from(payload)));
      } else if (type === FRAME.RST_STREAM) {
        const code = payload.readUInt32BE(0);
        tally.resets.set(code, (tally.resets.get(code) ?? 0) + 1);
        tally.resetAt.set(streamId, performance.now() - t0);
      } else if (type === FRAME.HEADERS) {
        tally.responses++;
      } else if (type === FRAME.GOAWAY) {
        tally.goaway = payload.readUInt32BE(4);
      }
    }
  });
  socket.write(Buffer.concat([PREFACE, frame(FRAME.SETTINGS, 0, 0, Buffer.alloc(0))]));
  const blocks = new Map<string, Buffer>();
  return {
    socket,
    tally,
    closedAt,
    open(id, path, contentType) {
      const key = `${path}\n${contentType}`;
      const block = blocks.get(key) ?? requestHeaderBlock(path, contentType);
      blocks.set(key, block);
      if (socket.destroyed) return false;
      return socket.write(frame(FRAME.HEADERS, FLAG.END_HEADERS, id, block));
    },
    data(id, payload) {
      if (socket.destroyed) return false;
      return socket.write(frame(FRAME.DATA, 0, id, payload));
    },
    drained: () =>
      new Promise<void>((resolve) => {
        if (socket.destroyed || socket.writableLength === 0) return resolve();
        const done = () => {
          socket.off("drain", done);
          socket.off("close", done);
          resolve();
        };
        socket.once("drain", done);
        socket.once("close", done);
      }),
    destroy: () => socket.destroy(),
  };
}
