// An in-memory duplex pipe of two Transports, for protocol tests without sockets.
import type { Transport } from "../protocol/channel.ts";

class Side implements Transport {
  #chunks: Uint8Array[] = [];
  #waiting: (() => void) | undefined;
  #closed = false;
  peer!: Side;

  deliver(bytes: Uint8Array): void {
    this.#chunks.push(bytes.slice());
    this.#wake();
  }

  end(): void {
    this.#closed = true;
    this.#wake();
  }

  #wake(): void {
    const w = this.#waiting;
    this.#waiting = undefined;
    w?.();
  }

  async read(p: Uint8Array): Promise<number | null> {
    while (this.#chunks.length === 0) {
      if (this.#closed) return null;
      await new Promise<void>((resolve) => (this.#waiting = resolve));
    }
    const chunk = this.#chunks[0]!;
    const n = Math.min(p.length, chunk.length);
    p.set(chunk.subarray(0, n));
    if (n === chunk.length) this.#chunks.shift();
    else this.#chunks[0] = chunk.subarray(n);
    return n;
  }

  write(p: Uint8Array): Promise<number> {
    if (this.#closed) return Promise.reject(new Error("pipe closed"));
    this.peer.deliver(p.slice()); // a transport is done with `p` when its write resolves
    return Promise.resolve(p.length);
  }

  close(): void {
    this.end();
    this.peer.end();
  }
}

/** Two connected transports: what one writes, the other reads. */
export function pipe(): [Transport, Transport] {
  const a = new Side();
  const b = new Side();
  a.peer = b;
  b.peer = a;
  return [a, b];
}
