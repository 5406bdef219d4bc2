// The user's own RSA keys on this client, for one account on one server (§8.1, §8.5 step 2):
// one encrypted PEM file per key (key_file.ts), mode 0600, in the account's folder. Older keys
// stay, so that messages sealed to them before a `KEY` change still open; which one is current
// is the server's to say (GPK of oneself), and the keyring only knows which it holds.
import { join } from "node:path";
import { type CryptoEngine, fingerprintOfKid, type RsaPrivateKey, toHex } from "../crypto/mod.ts";
import { kidOf } from "../protocol/sealed.ts";
import { ensurePrivateDir, writePrivateFile } from "./config.ts";
import { decryptKeyPem, encryptKeyPem } from "./key_file.ts";

/** One of the user's keys, opened. */
export interface OwnKey {
  readonly key: RsaPrivateKey;
  readonly kid: Uint8Array;
  readonly fingerprint: string;
  readonly bits: number;
  readonly path: string;
  /** When its file was written (ms since the epoch; 0 if unknown). */
  readonly made: number;
}

const KEY_FILE = /^key-([0-9a-f]{64})\.pem$/;

/** A key file's copy under a new password, while the change is unanswered. */
const NEXT_SUFFIX = ".next";
const nextPath = (path: string) => `${path}${NEXT_SUFFIX}`;

/** The file name of the key with `kid`. */
function keyFileName(kid: Uint8Array): string {
  return `key-${toHex(kid)}.pem`;
}

/** The keys of one account that opened with its password, and the files that did not. */
export class Keyring {
  readonly #keys = new Map<string, OwnKey>();

  private constructor(readonly dir: string, readonly crypto: CryptoEngine) {}

  /**
   * Opens every key file in `dir` with `password`. Files that do not open (another password,
   * or damaged) are listed in `unreadable` and left alone: a wrong password never yields a key.
   */
  static async open(
    dir: string,
    password: string,
    crypto: CryptoEngine,
  ): Promise<{ keyring: Keyring; unreadable: string[] }> {
    const keyring = new Keyring(dir, crypto);
    const unreadable: string[] = [];
    let entries: Deno.DirEntry[] = [];
    try {
      entries = await Array.fromAsync(Deno.readDir(dir));
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
    const names = new Set(entries.filter((e) => e.isFile).map((e) => e.name));
    for (const name of [...names].sort()) {
      if (!KEY_FILE.test(name)) continue;
      const path = join(dir, name);
      let der = decryptKeyPem(await Deno.readTextFile(path), password);
      const next = nextPath(path);
      if (names.has(`${name}${NEXT_SUFFIX}`)) {
        // A password change whose answer was lost: the copy under the password that opens
        // the account now is the one to keep.
        if (der === undefined) {
          der = decryptKeyPem(await Deno.readTextFile(next), password);
          if (der !== undefined) await Deno.rename(next, path);
        } else {
          await Deno.remove(next).catch(() => {});
        }
      }
      if (der === undefined) {
        unreadable.push(path);
        continue;
      }
      try {
        const made = (await Deno.stat(path)).mtime?.getTime() ?? 0;
        keyring.#adopt(crypto.parsePrivateKey(der), path, made);
      } catch {
        unreadable.push(path);
      } finally {
        der.fill(0);
      }
    }
    return { keyring, unreadable };
  }

  #adopt(key: RsaPrivateKey, path: string, made: number): OwnKey {
    const kid = kidOf(key.publicKey);
    const fingerprint = fingerprintOfKid(kid);
    const own = { key, kid, fingerprint, bits: key.publicKey.bits, path, made };
    this.#keys.set(toHex(kid), own);
    return own;
  }

  /** The key with `kid`, if this client holds it. */
  byKid(kid: Uint8Array): OwnKey | undefined {
    return this.#keys.get(toHex(kid));
  }

  /** The key with `fingerprint`, if this client holds it. */
  byFingerprint(fingerprint: string): OwnKey | undefined {
    return [...this.#keys.values()].find((k) => k.fingerprint === fingerprint);
  }

  /** The fingerprints of every key held. */
  fingerprints(): string[] {
    return [...this.#keys.values()].map((k) => k.fingerprint);
  }

  get size(): number {
    return this.#keys.size;
  }

  /** The key made last, if any. */
  newest(): OwnKey | undefined {
    return [...this.#keys.values()].reduce<OwnKey | undefined>(
      (newest, k) => newest === undefined || k.made > newest.made ? k : newest,
      undefined,
    );
  }

  /** Stores `key` encrypted under `password` (directory 0700, file 0600) and holds it. */
  async add(key: RsaPrivateKey, password: string): Promise<OwnKey> {
    const path = join(this.dir, keyFileName(kidOf(key.publicKey)));
    await ensurePrivateDir(this.dir);
    const der = key.exportPkcs8();
    try {
      await writePrivateFile(path, await encryptKeyPem(der, password));
    } finally {
      der.fill(0);
    }
    return this.#adopt(key, path, Date.now());
  }

  /** Forgets `own` and deletes its file (a key that was never published). */
  async remove(own: OwnKey): Promise<void> {
    this.#keys.delete(toHex(own.kid));
    own.key.dispose();
    await Deno.remove(own.path).catch(() => {});
  }

  /**
   * Before a password change: every key held, encrypted under `password` beside its file
   * (`key-….pem.next`). The change's answer decides: commitNext() or dropNext(); with no
   * answer both stay, and open() keeps whichever the password of the next login opens.
   */
  async writeNext(password: string): Promise<void> {
    for (const own of this.#keys.values()) {
      const der = own.key.exportPkcs8();
      try {
        await writePrivateFile(nextPath(own.path), await encryptKeyPem(der, password));
      } finally {
        der.fill(0);
      }
    }
  }

  /** The password changed: the copies of writeNext() replace the key files. */
  async commitNext(): Promise<void> {
    for (const own of this.#keys.values()) await Deno.rename(nextPath(own.path), own.path);
  }

  /** The password did not change: the copies of writeNext() go. */
  async dropNext(): Promise<void> {
    for (const own of this.#keys.values()) await Deno.remove(nextPath(own.path)).catch(() => {});
  }

  /** Frees every key (the user logged out). */
  dispose(): void {
    for (const own of this.#keys.values()) own.key.dispose();
    this.#keys.clear();
  }
}
