// A Transport over a node:net socket, for harnesses that need a chosen loopback source
// address (127.0.0.x): Deno.connect cannot bind one, node:net's `localAddress` can.
import net from "node:net";
import type { Transport } from "../protocol/channel.ts";

/** A connected transport with its local address, closed by `close()`. */
export interface NodeTransport extends Transport {
  readonly localAddress: string;
}

/** Connects to `host:port` from `localAddress`; rejects if the connection fails. */
export function connectFrom(
  localAddress: string,
  host: string,
  port: number,
): Promise<NodeTransport> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, localAddress, noDelay: true });
    const chunks: Uint8Array[] = [];
    let ended = false;
    let failure: Error | undefined;
    let waiter: (() => void) | undefined;
    const wake = () => {
      const w = waiter;
      waiter = undefined;
      w?.();
    };
    socket.on("data", (data: Uint8Array) => {
      chunks.push(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      if (chunks.length > 64) socket.pause(); // bounded buffering: resume on read
      wake();
    });
    socket.on("end", () => {
      ended = true;
      wake();
    });
    socket.on("close", () => {
      ended = true;
      wake();
    });
    socket.on("error", (err: Error) => {
      failure = err;
      ended = true;
      wake();
      reject(err);
    });
    socket.on("connect", () =>
      resolve({
        localAddress,
        async read(p: Uint8Array): Promise<number | null> {
          while (chunks.length === 0) {
            if (failure) throw failure;
            if (ended) return null;
            await new Promise<void>((r) => (waiter = r));
          }
          const chunk = chunks[0]!;
          const n = Math.min(p.length, chunk.length);
          p.set(chunk.subarray(0, n));
          if (n === chunk.length) chunks.shift();
          else chunks[0] = chunk.subarray(n);
          if (chunks.length <= 16) socket.resume();
          return n;
        },
        write(p: Uint8Array): Promise<number> {
          if (failure) return Promise.reject(failure);
          if (ended) return Promise.reject(new Error("socket closed"));
          const copy = p.slice();
          return new Promise((res, rej) =>
            socket.write(copy, (err?: Error | null) => (err ? rej(err) : res(copy.length)))
          );
        },
        close(): void {
          ended = true;
          socket.destroy();
          wake();
        },
      }));
  });
}
