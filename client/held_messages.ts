// Sealed messages held unread because their sender's key changed and the user has not accepted
// the new one (/trust): acknowledged to the server like every DLV (§8.5), so they are kept here
// instead, one JSON line each, until they can be opened, or the user sees they cannot.
import { dirname } from "node:path";
import type { Deliver } from "../protocol/messages.ts";
import { ensurePrivateDir, readTextIfPresent, writePrivateFile } from "./config.ts";

/** Most messages held at once per account; older ones are dropped (and said so) beyond it. */
export const MAX_HELD_MESSAGES = 1000;

export type HeldMessage = Extract<Deliver, { sealed: string }>;

function isHeld(value: unknown): value is HeldMessage {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return v.code === "DLV" && typeof v.msg === "string" && typeof v.from === "string" &&
    typeof v.to === "string" && typeof v.sealed === "string" && typeof v.ts === "number";
}

/** The held messages of one account, in the order they came. */
export class HeldMessages {
  #messages: HeldMessage[] = [];

  private constructor(readonly path: string) {}

  static async load(path: string): Promise<HeldMessages> {
    const held = new HeldMessages(path);
    for (const line of (await readTextIfPresent(path)).split("\n")) {
      try {
        const value = JSON.parse(line);
        if (isHeld(value)) held.#messages.push(value);
      } catch {
        // A damaged line is dropped.
      }
    }
    return held;
  }

  get size(): number {
    return this.#messages.length;
  }

  /** Holds `message`; returns a message dropped to make room, if one was. */
  async hold(message: HeldMessage): Promise<HeldMessage | undefined> {
    if (this.#messages.some((m) => m.msg === message.msg)) return undefined;
    this.#messages.push(message);
    const dropped = this.#messages.length > MAX_HELD_MESSAGES ? this.#messages.shift() : undefined;
    await this.#save();
    return dropped;
  }

  /** Takes every held message from `user` out (to try opening them again). */
  async takeFrom(user: string): Promise<HeldMessage[]> {
    const taken = this.#messages.filter((m) => m.from === user);
    if (taken.length === 0) return [];
    this.#messages = this.#messages.filter((m) => m.from !== user);
    await this.#save();
    return taken;
  }

  async #save(): Promise<void> {
    await ensurePrivateDir(dirname(this.path));
    const lines = this.#messages.map((m) => JSON.stringify(m));
    await writePrivateFile(this.path, lines.length === 0 ? "" : lines.join("\n") + "\n");
  }
}
