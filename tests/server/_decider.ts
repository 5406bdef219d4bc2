// Given/when/then for the pure decider (server/decide.ts), in the style of emmett's
// DeciderSpecification: no sockets, no scrypt, no fsync. A scenario keeps a state, runs
// commands through `decide`, and carries the decisions out as the core would (facts at once,
// events as committed, work answered by the test), collecting everything sent to sessions.
import assert from "node:assert/strict";
import { TEST_ONLY_WEAK_PARAMS } from "../../crypto/mod.ts";
import { portableCrypto } from "../_engines.ts";
import type { ClientMessage, ServerMessage } from "../../protocol/messages.ts";
import { messageText, parseClientMessage } from "../../protocol/messages.ts";
import type { Event } from "../../store/mod.ts";
import { DEFAULT_LIMITS, type ServerLimits } from "../../server/config.ts";
import {
  type Command,
  decide,
  type Decision,
  type Outgoing,
  react,
  type Work,
  type WorkResult,
} from "../../server/decide.ts";
import {
  evolve,
  type Fact,
  initialServerState,
  type ServerState,
  type SessionId,
} from "../../server/state.ts";

export const SERVER_KEY = { key: "AAAA", fingerprint: "SHA256:test" };
/** A stored hash for tests: its parameters are the weak test ones, its bytes never checked. */
export const HASH =
  "scrypt$10$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

/** A decider and its state, with a clock that moves only when told. */
export class Scenario {
  readonly state: ServerState;
  now = 1_000_000;
  /** Everything sent to sessions, in order, since the last `take()`. */
  sent: Outgoing[] = [];
  /** Events committed, in order. */
  readonly log: Event[] = [];
  /** Password work asked for and not answered yet. */
  readonly work: Work[] = [];
  /** Appends not committed yet (see `hold`). */
  readonly held: Decision[] = [];
  #holding = false;
  #ids = 0;

  constructor(limits: Partial<ServerLimits> = {}) {
    this.state = initialServerState({
      limits: { ...DEFAULT_LIMITS, ...limits },
      serverKey: SERVER_KEY,
      hashParams: TEST_ONLY_WEAK_PARAMS,
      dummyHash: "dummy",
      crypto: portableCrypto,
    });
  }

  /** Given: events in the log, written by another node (what they tell sessions is sent). */
  given(...events: Event[]): this {
    for (const event of events) {
      const told = react(this.state, event, undefined).replies;
      evolve(this.state, event);
      this.log.push(event);
      this.#send(told);
    }
    return this;
  }

  #send(out: readonly Outgoing[]): void {
    this.sent.push(...out);
    for (const o of out) {
      if (o.message.code === "BYE") evolve(this.state, { type: "session_closing", session: o.to });
    }
  }

  /** When: a command; its decision is carried out and returned. */
  when(command: Command): Decision {
    const d = decide(this.state, command, {
      now: this.now,
      newMessageId: () => `m${++this.#ids}`,
    });
    this.#carryOut(d);
    return d;
  }

  /** Opens session `id` from `addr`. */
  open(id: SessionId, addr = "192.0.2.1"): this {
    this.when({ type: "open", session: id, addr, addrKey: addr });
    return this;
  }

  /** Sends a client message as the record `session` sent. */
  send(session: SessionId, message: ClientMessage): Decision {
    const parsed = parseClientMessage(new TextEncoder().encode(messageText(message)));
    return this.when({ type: "receive", session, parsed });
  }

  /** Sends raw plaintext as a record of `session`. */
  sendRaw(session: SessionId, plaintext: string): Decision {
    return this.when({
      type: "receive",
      session,
      parsed: parseClientMessage(new TextEncoder().encode(plaintext)),
    });
  }

  /** Answers the oldest pending password job with `result`. */
  finishWork(result: WorkResult): Decision {
    const work = this.work.shift();
    assert.ok(work, "no password work is pending");
    return this.when({ type: "work_done", work, result });
  }

  /** Signs `user` up and logs them in on a fresh session `session`; clears what was sent. */
  loggedIn(session: SessionId, user: string, addr = "192.0.2.1"): this {
    if (!this.state.log.users.has(user)) {
      this.given({ type: "user_signed_up", ts: this.now, user, passwordHash: HASH });
    }
    this.open(session, addr);
    this.send(session, { code: "LGN", id: 1, user, password: "password-x" });
    this.finishWork({ kind: "verify", ok: true, rehashed: undefined });
    this.take();
    return this;
  }

  /** From now on, appends wait until `commitHeld()` (a slow disk, or a commit in flight). */
  hold(): this {
    this.#holding = true;
    return this;
  }

  /** Commits the held appends in order, or fails them with `failure`. */
  commitHeld(failure?: { error: string; conflict?: "user_exists" | "cid_used" }): void {
    this.#holding = false;
    for (const d of this.held.splice(0)) {
      if (failure) {
        this.when({
          type: "commit_failed",
          events: [...d.events, ...d.deferred],
          origin: d.origin,
          error: failure.error,
          ...(failure.conflict ? { conflict: failure.conflict } : {}),
        });
      } else {
        this.#commit(d);
      }
    }
  }

  /** What was sent since the last call, and forget it. */
  take(): Outgoing[] {
    const out = this.sent;
    this.sent = [];
    return out;
  }

  /** The messages sent to `session` since the last `take()`, without forgetting them. */
  to(session: SessionId): ServerMessage[] {
    return this.sent.filter((o) => o.to === session).map((o) => o.message);
  }

  #carryOut(d: Decision): void {
    for (const fact of d.facts) evolve(this.state, fact);
    this.#send(d.replies);
    this.work.push(...d.work);
    if (d.events.length === 0 && d.deferred.length === 0) return;
    if (this.#holding) this.held.push(d);
    else this.#commit(d);
  }

  #commit(d: Decision): void {
    const told: Outgoing[] = [];
    for (const event of [...d.deferred, ...d.events]) {
      const isDeferred = d.deferred.includes(event);
      const origin = isDeferred ? undefined : d.origin;
      told.push(...react(this.state, event, origin).replies);
      evolve(this.state, event, origin);
      this.log.push(event);
    }
    this.#send([...d.onCommit, ...told]);
  }
}

/** The facts of a decision, by type. */
export function factTypes(d: Decision): Fact["type"][] {
  return d.facts.map((f) => f.type);
}

/** The error code of an ERR, or the code of anything else. */
export function outcome(m: ServerMessage | undefined): string {
  return m === undefined ? "nothing" : m.code === "ERR" ? m.error : m.code;
}
