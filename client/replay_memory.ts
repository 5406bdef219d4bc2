// The replay memory of §8.5 step 8: the SHA-256 of every envelope this account opened, with the
// `msg` id it came under, per contact, kept beside the keys across restarts. The server cannot
// forge an envelope, but it could deliver an old one again under a new id; the same id again
// is only §4.3's at-least-once duplicate. One append-only file per contact, cut back to the
// newest REPLAY_MEMORY entries when it grows to twice that.
import { join } from "node:path";
import {
  CONFIG_FILE_MODE,
  ensurePrivateDir,
  readTextIfPresent,
  writePrivateFile,
} from "./config.ts";

/** Envelopes remembered per contact (§8.5 asks for at least 10,000). */
export const REPLAY_MEMORY = 10_000;

/** What a contact's memory holds: envelope digest (hex) → the msg id it was opened under. */
interface ContactMemory {
  readonly byDigest: Map<string, string>;
  readonly msgs: Set<string>;
  /** Lines in the file (it is cut back when this reaches twice REPLAY_MEMORY). */
  lines: number;
}

/** One account's memory of opened envelopes, read per contact when first needed. */
export class ReplayMemory {
  readonly #contacts = new Map<string, Promise<ContactMemory>>();

  constructor(readonly dir: string, readonly limit: number = REPLAY_MEMORY) {}

  #path(contact: string): string {
    // Usernames are safe file names (§4.3: a-z, 0-9, '_', '.', '-'; never starting with '.').
    return join(this.dir, contact);
  }

  #memory(contact: string): Promise<ContactMemory> {
    let memory = this.#contacts.get(contact);
    if (memory === undefined) {
      memory = this.#read(contact);
      this.#contacts.set(contact, memory);
    }
    return memory;
  }

  async #read(contact: string): Promise<ContactMemory> {
    const memory: ContactMemory = { byDigest: new Map(), msgs: new Set(), lines: 0 };
    const text = await readTextIfPresent(this.#path(contact));
    const entries = text.split("\n").flatMap((line) => {
      const match = /^([0-9a-f]{64}) (".*")$/.exec(line);
      if (match === null) return [];
      try {
        const msg = JSON.parse(match[2]!);
        return typeof msg === "string" ? [[match[1]!, msg] as const] : [];
      } catch {
        return [];
      }
    });
    for (const [digest, msg] of entries.slice(-this.limit)) this.#note(memory, digest, msg);
    memory.lines = entries.length;
    return memory;
  }

  #note(memory: ContactMemory, digest: string, msg: string): void {
    memory.byDigest.delete(digest);
    memory.byDigest.set(digest, msg);
    memory.msgs.add(msg);
    while (memory.byDigest.size > this.limit) {
      const [oldest, oldMsg] = memory.byDigest.entries().next().value!;
      memory.byDigest.delete(oldest);
      memory.msgs.delete(oldMsg);
    }
  }

  /** Whether an envelope from `contact` was opened under the id `msg` (a plain duplicate). */
  async openedAs(contact: string, msg: string): Promise<boolean> {
    return (await this.#memory(contact)).msgs.has(msg);
  }

  /** Whether the envelope with `digest` (hex) from `contact` was opened before. */
  async openedBefore(contact: string, digest: string): Promise<boolean> {
    return (await this.#memory(contact)).byDigest.has(digest);
  }

  /** Remembers that the envelope with `digest` (hex) from `contact` opened under `msg`. */
  async remember(contact: string, digest: string, msg: string): Promise<void> {
    const memory = await this.#memory(contact);
    this.#note(memory, digest, msg);
    await ensurePrivateDir(this.dir);
    const path = this.#path(contact);
    if (++memory.lines >= 2 * this.limit) {
      const lines = [...memory.byDigest].map(([d, m]) => `${d} ${JSON.stringify(m)}`);
      await writePrivateFile(path, lines.join("\n") + "\n");
      memory.lines = lines.length;
      return;
    }
    await Deno.writeTextFile(path, `${digest} ${JSON.stringify(msg)}\n`, {
      append: true,
      mode: CONFIG_FILE_MODE,
    });
  }
}
