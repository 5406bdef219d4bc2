// The other side of handshake_pool.ts: a worker thread that answers ClientHellos with the
// server's identity. It holds a copy of the identity key (handed over once, at start) and
// nothing else of the server's; keys it derives are posted back and wiped here.
import {
  type CryptoEngine,
  type CryptoMode,
  identityFromPem,
  kexGroupById,
  selectCrypto,
  type ServerIdentity,
} from "../crypto/mod.ts";
import type { SessionKeys } from "../protocol/handshake.ts";
import { type HandshakeTrace, ServerHandshake } from "../protocol/handshake.ts";

/** The first message a worker gets. */
export interface WorkerInit {
  readonly type: "init";
  /** The identity as PKCS#8 PEM. */
  readonly pem: string;
  readonly crypto: CryptoMode;
  readonly libcrypto: string | undefined;
  /** Group ids offered; all of them when absent. */
  readonly groups: readonly number[] | undefined;
  readonly trace: boolean;
}

export interface HandshakeJob {
  readonly job: number;
  readonly hello: Uint8Array;
}

export type HandshakeJobResult =
  | {
    job: number;
    ok: true;
    reply: Uint8Array;
    keys: SessionKeys;
    groupId: number;
    transcriptHash: Uint8Array;
    trace: HandshakeTrace[];
  }
  /** The client's hello was refused: `reply` is the §2.3 ERR frame. */
  | { job: number; ok: false; reply: Uint8Array; code: string; message: string }
  /** Our own failure (a signature that could not be made, say): nothing goes to the client. */
  | { job: number; ok: false; fault: string };

interface WorkerScope {
  name?: string;
  postMessage(message: unknown): void;
  onmessage: ((e: MessageEvent) => void) | null;
}

/** Whether this module runs as a handshake worker (see HANDSHAKE_WORKER_NAME). */
export function inHandshakeWorker(): boolean {
  const scope = globalThis as unknown as WorkerScope;
  return typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !== "undefined" &&
    scope.name === "hybrid-handshake";
}

/** Serves jobs until the pool terminates this worker. */
export function runHandshakeWorker(): void {
  const scope = globalThis as unknown as WorkerScope;
  let identity: ServerIdentity | undefined;
  let engine: CryptoEngine | undefined;
  let init: WorkerInit | undefined;
  scope.onmessage = (e: MessageEvent<WorkerInit | HandshakeJob>) => {
    const data = e.data;
    if ("type" in data) {
      init = data;
      engine = selectCrypto(data.crypto, data.libcrypto).engine;
      identity = identityFromPem(data.pem, engine);
      return;
    }
    const result = answer(data, identity, engine, init);
    scope.postMessage(result);
    if (result.ok) {
      // postMessage copied them: this thread's copies go now.
      for (const k of [result.keys.send, result.keys.receive]) {
        k.enc.fill(0);
        k.mac.fill(0);
      }
    }
  };
}

function answer(
  job: HandshakeJob,
  identity: ServerIdentity | undefined,
  engine: CryptoEngine | undefined,
  init: WorkerInit | undefined,
): HandshakeJobResult {
  if (!identity || !engine || !init) {
    return { job: job.job, ok: false, fault: "worker not initialised" };
  }
  const trace: HandshakeTrace[] = [];
  try {
    const groups = init.groups?.map((id) => kexGroupById(id)).filter((g) => g !== undefined);
    const outcome = new ServerHandshake({
      identity,
      crypto: engine,
      ...(groups === undefined ? {} : { groups }),
      trace: init.trace ? (e) => trace.push(e) : undefined,
    }).respond(job.hello);
    if (!outcome.ok) {
      if (outcome.reply === undefined) {
        return { job: job.job, ok: false, fault: faultOf(outcome.error) };
      }
      return {
        job: job.job,
        ok: false,
        reply: outcome.reply,
        code: outcome.error.code,
        message: outcome.error.message,
      };
    }
    return {
      job: job.job,
      ok: true,
      reply: outcome.reply,
      keys: outcome.keys,
      groupId: outcome.group.id,
      transcriptHash: outcome.transcriptHash,
      trace,
    };
  } catch (err) {
    return { job: job.job, ok: false, fault: faultOf(err) };
  }
}

function faultOf(err: unknown): string {
  const cause = (err as { cause?: unknown })?.cause;
  return cause === undefined ? String(err) : `${String(err)} (cause: ${String(cause)})`;
}
