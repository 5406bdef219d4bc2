// Answers ClientHellos off the event loop. A handshake costs the server a key pair, the shared
// secret and an RSA signature, all for a peer that has proved nothing yet: on the event loop,
// a flood of ClientHellos would delay every logged-in session's records. Here they run on
// worker threads, and at most `maxInFlight` wait or run at once; past that a connection is
// dropped without an answer (§2.3 allows it), so a flood costs a bounded queue, not latency.
import { HandshakeError } from "../protocol/errors.ts";
import {
  type HandshakeTrace,
  ServerHandshake,
  type ServerHandshakeOptions,
  type ServerHandshakeOutcome,
} from "../protocol/handshake.ts";
import { kexGroupById } from "../crypto/mod.ts";
import type { HandshakeJob, HandshakeJobResult, WorkerInit } from "./handshake_worker.ts";

/** A ClientHello's answer, with the trace steps when tracing. */
export interface PoolOutcome {
  readonly outcome: ServerHandshakeOutcome;
  readonly trace: readonly HandshakeTrace[];
}

/** Where the handshakes of a server are computed. */
export interface HandshakePool {
  /** Answers `hello`; undefined when `maxInFlight` are already under way (drop the connection). */
  respond(hello: Uint8Array): Promise<PoolOutcome> | undefined;
  /** ClientHellos being answered now. */
  readonly inFlight: number;
  close(): void;
}

/** Computes handshakes on the event loop (tests, and `handshake_workers=0`). */
export class InlineResponder implements HandshakePool {
  inFlight = 0;

  constructor(readonly options: Omit<ServerHandshakeOptions, "trace">, readonly trace: boolean) {}

  respond(hello: Uint8Array): Promise<PoolOutcome> {
    const steps: HandshakeTrace[] = [];
    const outcome = new ServerHandshake({
      ...this.options,
      trace: this.trace ? (e) => steps.push(e) : undefined,
    }).respond(hello);
    return Promise.resolve({ outcome, trace: steps });
  }

  close(): void {}
}

interface Slot {
  readonly worker: Worker;
  readonly waiting: Map<number, (result: HandshakeJobResult) => void>;
}

/** Computes handshakes on `size` worker threads running `workerUrl` (see handshake_worker.ts). */
export class WorkerResponder implements HandshakePool {
  readonly #slots: Slot[] = [];
  readonly #maxInFlight: number;
  #inFlight = 0;
  #nextJob = 1;
  #closed = false;

  constructor(workerUrl: URL | string, size: number, maxInFlight: number, init: WorkerInit) {
    if (size < 1) throw new RangeError(`a worker pool needs at least 1 worker, got ${size}`);
    this.#maxInFlight = maxInFlight;
    for (let i = 0; i < size; i++) {
      const worker = new Worker(workerUrl, { type: "module", name: HANDSHAKE_WORKER_NAME });
      const slot: Slot = { worker, waiting: new Map() };
      worker.onmessage = (e: MessageEvent<HandshakeJobResult>) => {
        const done = slot.waiting.get(e.data.job);
        slot.waiting.delete(e.data.job);
        done?.(e.data);
      };
      worker.onerror = (e) => {
        // A worker that dies fails what it held; the next job goes to another one.
        e.preventDefault();
        for (const done of slot.waiting.values()) {
          done({ job: 0, ok: false, fault: `handshake worker failed: ${e.message}` });
        }
        slot.waiting.clear();
      };
      worker.postMessage(init);
      this.#slots.push(slot);
    }
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  respond(hello: Uint8Array): Promise<PoolOutcome> | undefined {
    if (this.#closed || this.#inFlight >= this.#maxInFlight) return undefined;
    // The worker with the fewest jobs gets this one.
    let slot = this.#slots[0]!;
    for (const s of this.#slots) if (s.waiting.size < slot.waiting.size) slot = s;
    const job = this.#nextJob++;
    this.#inFlight++;
    return new Promise<HandshakeJobResult>((resolve) => {
      slot.waiting.set(job, resolve);
      slot.worker.postMessage({ job, hello } satisfies HandshakeJob);
    }).then((result) => {
      this.#inFlight--;
      return { outcome: outcomeOf(result), trace: result.ok ? result.trace : [] };
    });
  }

  close(): void {
    this.#closed = true;
    for (const slot of this.#slots) {
      slot.worker.terminate();
      for (const done of slot.waiting.values()) {
        done({ job: 0, ok: false, fault: "server shutting down" });
      }
      slot.waiting.clear();
    }
  }
}

/** The name workers are started with, by which a module knows it runs in one. */
export const HANDSHAKE_WORKER_NAME = "hybrid-handshake";

/** Rebuilds the handshake's outcome on this side of the worker boundary. */
function outcomeOf(result: HandshakeJobResult): ServerHandshakeOutcome {
  if (result.ok) {
    const group = kexGroupById(result.groupId);
    if (!group) throw new TypeError(`worker answered with unknown group ${result.groupId}`);
    return {
      ok: true,
      reply: result.reply,
      keys: result.keys,
      group,
      transcriptHash: result.transcriptHash,
    };
  }
  if ("fault" in result) {
    return {
      ok: false,
      reply: undefined,
      error: new HandshakeError("server_fault", result.fault),
    };
  }
  return { ok: false, reply: result.reply, error: new HandshakeError(result.code, result.message) };
}
