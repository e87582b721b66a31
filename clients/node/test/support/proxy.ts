/**
 * A TCP proxy that can cut a connection right after the server committed a call.
 *
 * Client -> server bytes pass unchanged. Server -> client bytes are read as HTTP/2 frames (the
 * server sends no preface, only frames: a 9-byte header of 24-bit length, 8-bit type, 8-bit
 * flags, 32-bit stream id, then the payload). While armed, the first HEADERS frame (type 0x1) on
 * a non-zero stream (the reply to a call, which a unary handler sends only after it returned,
 * i.e. after the write was committed) is not forwarded: both sockets are destroyed instead and
 * the proxy disarms itself. The client sees the connection drop without any reply.
 */
import { createServer, connect } from "node:net";
import type { Server, Socket } from "node:net";

const FRAME_HEADER = 9;
const HEADERS = 0x1;

export class CuttingProxy {
  /** Connections accepted so far. */
  connections = 0;
  /** Connections cut so far. */
  cuts = 0;
  armed = false;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  #port = 0;

  constructor(readonly upstreamPort: number) {
    this.#server = createServer((client) => this.#accept(client));
  }

  get address(): string {
    return `127.0.0.1:${this.#port}`;
  }

  async listen(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, "127.0.0.1", resolve));
    const address = this.#server.address();
    if (address === null || typeof address === "string") {
      throw new Error("proxy has no port");
    }
    this.#port = address.port;
    return this;
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) {
      socket.destroy();
    }
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(client: Socket): void {
    this.connections++;
    const upstream = connect(this.upstreamPort, "127.0.0.1");
    this.#sockets.add(client);
    this.#sockets.add(upstream);
    const destroyBoth = (): void => {
      client.destroy();
      upstream.destroy();
      this.#sockets.delete(client);
      this.#sockets.delete(upstream);
    };
    client.on("error", destroyBoth);
    upstream.on("error", destroyBoth);
    client.on("close", destroyBoth);
    upstream.on("close", destroyBoth);
    client.pipe(upstream);

    // Server -> client: forward frame by frame, looking at each frame header.
    let pending = Buffer.alloc(0);
    let payloadLeft = 0; // bytes of the current frame's payload still to forward
    upstream.on("data", (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      const out: Buffer[] = [];
      for (;;) {
        if (payloadLeft > 0) {
          const take = Math.min(payloadLeft, pending.length);
          if (take === 0) {
            break;
          }
          out.push(pending.subarray(0, take));
          pending = pending.subarray(take);
          payloadLeft -= take;
          continue;
        }
        if (pending.length < FRAME_HEADER) {
          break;
        }
        const length = pending.readUIntBE(0, 3);
        const type = pending.readUInt8(3);
        const streamId = pending.readUInt32BE(5) & 0x7fffffff;
        if (this.armed && type === HEADERS && streamId !== 0) {
          this.armed = false;
          this.cuts++;
          if (out.length > 0) {
            client.write(Buffer.concat(out));
          }
          destroyBoth();
          return;
        }
        out.push(pending.subarray(0, FRAME_HEADER));
        pending = pending.subarray(FRAME_HEADER);
        payloadLeft = length;
      }
      if (out.length > 0) {
        client.write(Buffer.concat(out));
      }
    });
  }
}
