// Contacts' keys, pinned on first use as known_hosts pins servers (§6, §8.5 step 3): the first
// key seen for a user is trusted and announced; a different one is not, until the user accepts
// it (/trust). One file per account, `user fingerprint verified|unverified` lines, oldest
// first: the last line of a user is the key sealed messages go to, the earlier ones keys the
// user accepted before, still good for opening what was sealed with them.
import { dirname } from "node:path";
import { FINGERPRINT_PATTERN, isUsername } from "../protocol/messages.ts";
import { ensurePrivateDir, readTextIfPresent, writePrivateFile } from "./config.ts";

/** A contact's key this client accepted. */
export interface PinnedKey {
  readonly fingerprint: string;
  /** The user compared the fingerprint out of band (/trust USER FINGERPRINT). */
  readonly verified: boolean;
}

/** How a key the server names for a user relates to the pins. */
export type PinStatus =
  /** No key of this user pinned yet: this one is pinned now. */
  | "first_use"
  /** The current pin. */
  | "current"
  /** A key accepted earlier, replaced since (good for opening older messages). */
  | "earlier"
  /** Not among the pins, which hold others: not trusted until /trust. */
  | "changed";

/** The pins of one account's contacts, kept in a file; every change is written at once. */
export class Contacts {
  readonly #pins = new Map<string, PinnedKey[]>();
  /** Lines that did not parse, kept as they are when the file is written again. */
  #unparsed: string[] = [];

  private constructor(readonly path: string) {}

  /** Reads the pins at `path`; an absent file holds none. */
  static async load(path: string): Promise<Contacts> {
    const contacts = new Contacts(path);
    for (const line of (await readTextIfPresent(path)).split("\n")) {
      const [user, fingerprint, state, ...rest] = line.trim().split(/\s+/);
      if (
        isUsername(user) && fingerprint !== undefined && FINGERPRINT_PATTERN.test(fingerprint) &&
        (state === "verified" || state === "unverified") && rest.length === 0
      ) {
        contacts.#add(user, { fingerprint, verified: state === "verified" });
      } else if (line.trim() !== "") contacts.#unparsed.push(line);
    }
    return contacts;
  }

  /** The accepted keys of `user`, oldest first; the last one is the current pin. */
  keysOf(user: string): readonly PinnedKey[] {
    return this.#pins.get(user) ?? [];
  }

  /** The current pin of `user`, if any. */
  currentOf(user: string): PinnedKey | undefined {
    return this.keysOf(user).at(-1);
  }

  /** How `fingerprint`, a key of `user`, relates to the pins. */
  status(user: string, fingerprint: string): PinStatus {
    const keys = this.keysOf(user);
    if (keys.length === 0) return "first_use";
    if (keys.at(-1)!.fingerprint === fingerprint) return "current";
    return keys.some((k) => k.fingerprint === fingerprint) ? "earlier" : "changed";
  }

  /**
   * Pins `fingerprint` as `user`'s current key (moved to the end if it was pinned before), or,
   * when not `current`, as a key accepted earlier (first in line). Verified if `verified` or if
   * it was verified before.
   */
  async pin(user: string, fingerprint: string, verified: boolean, current = true): Promise<void> {
    const keys = this.keysOf(user);
    const before = keys.find((k) => k.fingerprint === fingerprint);
    const key = { fingerprint, verified: verified || (before?.verified ?? false) };
    const others = keys.filter((k) => k.fingerprint !== fingerprint);
    this.#pins.set(user, current ? [...others, key] : [key, ...others]);
    await this.#save();
  }

  #add(user: string, key: PinnedKey): void {
    const keys = this.#pins.get(user) ?? [];
    keys.push(key);
    this.#pins.set(user, keys);
  }

  async #save(): Promise<void> {
    const lines = [...this.#unparsed];
    for (const [user, keys] of this.#pins) {
      for (const k of keys) {
        lines.push(`${user} ${k.fingerprint} ${k.verified ? "verified" : "unverified"}`);
      }
    }
    await ensurePrivateDir(dirname(this.path));
    await writePrivateFile(this.path, lines.join("\n") + "\n");
  }
}
