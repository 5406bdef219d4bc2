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

interface Waiting {
  readonly hello: Uint8Array;
  readonly done: (result: PoolOutcome) => void;
}

interface Slot {
  readonly worker: Worker;
  readonly waiting: Map<number, Waiting>;
  dead: boolean;
}

/**
 * Computes handshakes on `size` worker threads running `workerUrl` (see handshake_worker.ts). A
 * worker that fails (it could not load its module, say) is logged through `onFault` and left
 * aside; what it held and everything after it is computed by `fallback` on the event loop, so
 * a broken worker costs speed, never a connection.
 */
export class WorkerResponder implements HandshakePool {
  readonly #slots: Slot[] = [];
  readonly #maxInFlight: number;
  readonly #fallback: InlineResponder;
  readonly #onFault: (message: string) => void;
  #inFlight = 0;
  #nextJob = 1;
  #closed = false;

  constructor(
    workerUrl: URL | string,
    size: number,
    maxInFlight: number,
    init: WorkerInit,
    fallback: InlineResponder,
    onFault: (message: string) => void = () => {},
  ) {
    if (size < 1) throw new RangeError(`a worker pool needs at least 1 worker, got ${size}`);
    this.#maxInFlight = maxInFlight;
    this.#fallback = fallback;
    this.#onFault = onFault;
    for (let i = 0; i < size; i++) {
      const worker = new Worker(workerUrl, { type: "module", name: HANDSHAKE_WORKER_NAME });
      const slot: Slot = { worker, waiting: new Map(), dead: false };
      worker.onmessage = (e: MessageEvent<HandshakeJobResult>) => {
        const waiting = slot.waiting.get(e.data.job);
        slot.waiting.delete(e.data.job);
        const result = e.data;
        waiting?.done({ outcome: outcomeOf(result), trace: result.ok ? result.trace : [] });
      };
      worker.onerror = (e) => {
        e.preventDefault();
        this.#bury(slot, e.message);
      };
      worker.postMessage(init);
      this.#slots.push(slot);
    }
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /** Leaves a failed worker aside and answers what it held on the event loop. */
  #bury(slot: Slot, why: string): void {
    if (slot.dead) return;
    slot.dead = true;
    slot.worker.terminate();
    const alive = this.#slots.filter((s) => !s.dead).length;
    this.#onFault(
      `handshake worker failed (${why}); ${
        alive === 0 ? "handshakes are computed on the event loop" : `${alive} left`
      }`,
    );
    for (const { hello, done } of slot.waiting.values()) {
      this.#fallback.respond(hello).then(done);
    }
    slot.waiting.clear();
  }

  respond(hello: Uint8Array): Promise<PoolOutcome> | undefined {
    if (this.#closed || this.#inFlight >= this.#maxInFlight) return undefined;
    // The live worker with the fewest jobs gets this one; with none left, the event loop does.
    let slot: Slot | undefined;
    for (const s of this.#slots) {
      if (!s.dead && (slot === undefined || s.waiting.size < slot.waiting.size)) slot = s;
    }
    if (slot === undefined) return this.#fallback.respond(hello);
    const job = this.#nextJob++;
    this.#inFlight++;
    const chosen = slot;
    return new Promise<PoolOutcome>((done) => {
      chosen.waiting.set(job, { hello, done });
      chosen.worker.postMessage({ job, hello } satisfies HandshakeJob);
    }).finally(() => this.#inFlight--);
  }

  close(): void {
    this.#closed = true;
    for (const slot of this.#slots) {
      slot.dead = true;
      slot.worker.terminate();
      for (const { done } of slot.waiting.values()) {
        done({
          outcome: outcomeOf({ job: 0, ok: false, fault: "server shutting down" }),
          trace: [],
        });
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
