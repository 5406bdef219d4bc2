// Sealed messages for one logged-in account (PROTOCOL §8), between the REPL and the wire: the
// account's own keys (keyring.ts), its contacts' pinned keys (contacts.ts), sealing what it
// sends whenever both sides have a key, opening what it receives with the checks of §8.5, the
// replay memory, and messages held while a contact's changed key is not accepted.
import { join } from "node:path";
import {
  checkUserKey,
  type CryptoEngine,
  fingerprintOfKid,
  fromBase64,
  type RsaPrivateKey,
  type RsaPublicKey,
  toBase64,
  toHex,
} from "../crypto/mod.ts";
import type { Content, Deliver, ErrorCode, Response, UserEntry } from "../protocol/messages.ts";
import { MAX_SEALED_CHARS } from "../protocol/limits.ts";
import { open, seal, sealedChars, SealedError, type SealedTrace } from "../protocol/sealed.ts";
import type { RequestBody } from "../protocol/rpc.ts";
import { ConnectionError } from "./connection.ts";
import { Contacts } from "./contacts.ts";
import type { ContactKeyChange, EventSink } from "./client_events.ts";
import { HeldMessages } from "./held_messages.ts";
import { Keyring, type OwnKey } from "./keyring.ts";
import { ReplayMemory } from "./replay_memory.ts";
import { sealedView } from "./trace.ts";

/** Why a sealed-messaging command or send cannot go ahead; `code` is stable, for --json. */
export class SealingError extends Error {
  override name = "SealingError";
  constructor(readonly code: ErrorCode | SealingCode, message: string) {
    super(message);
  }
}

/** The client's own refusals (beside the server's error codes). */
export type SealingCode =
  | "not_sealed"
  | "key_changed"
  | "key_withdrawn"
  | "bad_key";

/** What a send goes out as. */
export interface Outgoing {
  readonly content: Content;
  readonly sealed: boolean;
}

export interface SealingOptions {
  readonly crypto: CryptoEngine;
  readonly user: string;
  /** The account's password: its key files are encrypted with it. */
  readonly password: string;
  /** The account's folder (config.ts serviceAccountDir). */
  readonly dir: string;
  /** Sends a request on the account's connection. */
  readonly request: (body: RequestBody) => Promise<Response>;
  readonly events: EventSink;
  /** Whether to trace sealing and opening (--trace, /trace on). */
  readonly tracing: () => boolean;
}

/** A user's key as the server gave it, checked against §8.1. */
interface PublishedKey {
  readonly key: RsaPublicKey;
  readonly fingerprint: string;
  readonly current: boolean;
}

/** The sender's key is not trusted: the message is held (not a failure of §8.5). */
class Held extends Error {
  constructor(readonly fingerprint: string) {
    super("held");
  }
}

/** Sealed messaging of one account on one server; see the file comment. */
export class SealedMessaging {
  readonly user: string;
  readonly #o: SealingOptions;
  #password: string;
  readonly #keyring: Keyring;
  readonly #contacts: Contacts;
  readonly #held: HeldMessages;
  readonly #replay: ReplayMemory;
  /** Your key the server publishes, when this client holds it: sealed messages go out with it. */
  #current: OwnKey | undefined;
  /** Recipients' current keys, fetched once per session (again after `stale_key`). */
  readonly #recipients = new Map<string, PublishedKey>();
  /** Senders' keys by fingerprint, each fetched and parsed once. */
  readonly #senderKeys = new Map<string, RsaPublicKey>();
  /** Changed keys announced loudly this session (`user fingerprint`), each once. */
  readonly #announced = new Set<string>();
  /** Recipients told once why their messages go unsealed. */
  readonly #toldUnsealed = new Set<string>();
  /** The keys were freed (logged out): nothing more is opened. */
  #disposed = false;

  private constructor(
    o: SealingOptions,
    keyring: Keyring,
    contacts: Contacts,
    held: HeldMessages,
  ) {
    this.#o = o;
    this.user = o.user;
    this.#password = o.password;
    this.#keyring = keyring;
    this.#contacts = contacts;
    this.#held = held;
    this.#replay = new ReplayMemory(join(o.dir, "opened"));
  }

  /** Opens the account's keys with its password, and its pins; warns of keys that do not open. */
  static async open(o: SealingOptions): Promise<SealedMessaging> {
    const { keyring, unreadable } = await Keyring.open(o.dir, o.password, o.crypto);
    for (const path of unreadable) {
      o.events({
        type: "warning",
        message: `${path} does not open with your password (was the password changed on ` +
          "another client?): messages sealed to that key cannot be opened here",
      });
    }
    const contacts = await Contacts.load(join(o.dir, "contacts"));
    const held = await HeldMessages.load(join(o.dir, "held"));
    const messaging = new SealedMessaging(o, keyring, contacts, held);
    if (held.size > 0) {
      o.events({
        type: "info",
        message: `${held.size} sealed message(s) held from contacts whose new key you have ` +
          "not accepted: /whois and /trust them",
      });
    }
    return messaging;
  }

  /** Your key that sealed messages go out with, if this client holds it. */
  get currentKey(): OwnKey | undefined {
    return this.#current;
  }

  /** Whether checkOwnKey() completed (a lost connection interrupts it: it runs again). */
  ownKeyChecked = false;

  /**
   * After a login: which of your keys is the published one (GPK of yourself). An account with
   * none gets one, made by `makeKey`, and says so; a published key this client does not hold
   * (made on another device) is reported: messages go out unsealed until /keygen.
   */
  async checkOwnKey(makeKey: () => Promise<RsaPrivateKey>): Promise<Response | undefined> {
    const published = await this.#fetch(this.user);
    this.ownKeyChecked = true;
    if ("key" in published) {
      this.#current = this.#keyring.byFingerprint(published.fingerprint);
      if (this.#current === undefined) {
        this.#o.events({
          type: "warning",
          message: `your published key ${published.fingerprint} is not on this client (made on ` +
            "another device?): messages sealed to it cannot be opened here, and yours go out " +
            "unsealed; /keygen makes a key here (your contacts will see your key change)",
        });
      }
      return undefined;
    }
    if (published.error !== "no_key") {
      this.#o.events({
        type: "warning",
        message: `cannot learn your published key: ${published.message}`,
      });
      return undefined;
    }
    // A key made at sign-up that the server did not publish (one that ignores SNU's key) is
    // published now rather than replaced.
    const unpublished = this.#keyring.newest();
    if (unpublished !== undefined) {
      this.#o.events({
        type: "info",
        message: `your account has no key yet: publishing ${unpublished.fingerprint}, made here`,
      });
      return await this.#publish(unpublished);
    }
    this.#o.events({
      type: "info",
      message: "your account has no key yet: making one, so that messages to and from you can " +
        "be sealed end to end",
    });
    return await this.publish(await makeKey());
  }

  /**
   * Stores `key` (encrypted with the password) and publishes it with KEY; it is your current
   * key once acknowledged. An ERR is returned for the caller to report, the key forgotten;
   * with no answer it is kept (see #publish).
   */
  async publish(key: RsaPrivateKey): Promise<Response> {
    return await this.#publish(await this.#keyring.add(key, this.#password), true);
  }

  /**
   * KEY for `own`; when refused, the key is forgotten if `fresh` (made for this). With no
   * answer (the connection went) it is kept: the server may have published it before the
   * connection went, and the next login (or a `stale_key`) learns which key is current.
   */
  async #publish(own: OwnKey, fresh = false): Promise<Response> {
    const key = own.key;
    const response = await this.#o.request({ code: "KEY", key: toBase64(key.publicKey.spkiDer) });
    if (response.code === "ERR") {
      if (fresh) await this.#keyring.remove(own);
      return response;
    }
    if (response.request !== "KEY" || response.fingerprint !== own.fingerprint) {
      throw new SealingError(
        "bad_key",
        `the server acknowledged a key other than yours (${JSON.stringify(response)})`,
      );
    }
    this.#current = own;
    this.#o.events({
      type: "ack",
      request: "KEY",
      id: response.id,
      fingerprint: own.fingerprint,
      bits: own.bits,
      path: own.path,
    });
    return response;
  }

  /**
   * What `text` to `to` goes out as: sealed when you and `to` both have a key (§8.2), else a
   * plain text, unless `requireSealed`. SealingError when it must not go at all: `to`'s key
   * changed and is not accepted, or a key `to` had is gone.
   */
  async outgoing(to: string, text: string, requireSealed: boolean): Promise<Outgoing> {
    const own = this.#current;
    const unsealed = (why: string): Outgoing => {
      if (requireSealed) {
        throw new SealingError("not_sealed", `${why}, and --require-sealed is on`);
      }
      if (!this.#toldUnsealed.has(`${to} ${why}`)) {
        this.#toldUnsealed.add(`${to} ${why}`);
        this.#o.events({ type: "info", message: `not sealed: ${why}` });
      }
      return { content: { text }, sealed: false };
    };
    if (own === undefined) return unsealed("this client holds none of your keys (/keygen)");
    const recipient = to === this.user ? own.key.publicKey : (await this.#recipientKey(to))?.key;
    if (recipient === undefined) return unsealed(`${to} has published no key`);
    // A text within the limit can still seal too large (JSON escapes in the inner plaintext):
    // it must be sealed, so it is refused rather than sent as text.
    const chars = sealedChars(text, own.key.publicKey, recipient);
    if (chars > MAX_SEALED_CHARS) {
      throw new SealingError(
        "too_large",
        `sealed, this message would be ${chars} characters, above the ${MAX_SEALED_CHARS} a ` +
          "sealed message may take (each quote, backslash, tab or line break counts twice, each " +
          "other control character six times): shorten it or split it",
      );
    }
    const { sealed } = seal(
      this.#o.crypto,
      { from: this.user, to, text },
      { sender: own.key, recipient },
      { trace: this.#trace("seal", to) },
    );
    return { content: { sealed }, sealed: true };
  }

  /**
   * After `stale_key`: forgets `to`'s key and asks again which of yours is current. SealingError
   * when you had a key here and the one published now is not on this client: the message being
   * sent was sealed, and is not to go out again as text.
   */
  async stale(to: string): Promise<void> {
    this.#recipients.delete(to);
    const published = await this.#fetch(this.user);
    const before = this.#current;
    this.#current = "key" in published
      ? this.#keyring.byFingerprint(published.fingerprint)
      : undefined;
    if (before !== undefined && this.#current === undefined) {
      const now = "key" in published ? published.fingerprint : "none";
      throw new SealingError(
        "key_changed",
        `your published key is now ${now}, not ${before.fingerprint}, and this client does not ` +
          "hold it (made on another device, or by the server): the message is not sent, " +
          `rather than sent unsealed; /whois ${this.user}, then /keygen to seal again`,
      );
    }
  }

  /** Forgets cached recipients' keys that a user list shows changed. */
  noteUsers(users: readonly UserEntry[]): void {
    for (const u of users) {
      const cached = this.#recipients.get(u.user);
      if (cached !== undefined && cached.fingerprint !== u.fingerprint) {
        this.#recipients.delete(u.user);
      }
    }
  }

  /**
   * Shows one DLV: a text as not sealed; a sealed one opened with §8.5's checks, shown sealed,
   * or as failed naming the check, or held. False when the server could not be asked for the
   * sender's key (the connection went), or the keys were freed (logged out): the message is
   * neither shown nor acknowledged, and is tried again when it comes again.
   */
  async receive(message: Deliver): Promise<boolean> {
    if (this.#disposed) return false;
    const { msg, from, to, ts } = message;
    if (message.sealed === undefined) {
      this.#o.events({ type: "message", msg, from, to, ts, text: message.text, sealed: false });
      return true;
    }
    // The same envelope under the same id: §4.3's duplicate, dropped silently (after a restart
    // the connection's own memory of ids is empty; this one is kept on disk).
    if (await this.#replay.openedAs(from, msg)) return true;
    try {
      const opened = await open(
        this.#o.crypto,
        message.sealed,
        { from, to: this.user },
        {
          recipientKey: (kid) => this.#keyring.byKid(kid)?.key,
          senderKey: (kid) => this.#senderKey(from, fingerprintOfKid(kid)),
          openedBefore: (digest) => this.#replay.openedBefore(from, toHex(digest)),
        },
        this.#trace("open", from),
      );
      await this.#replay.remember(from, toHex(opened.digest), msg);
      this.#o.events({ type: "message", msg, from, to, ts, text: opened.text, sealed: true });
    } catch (err) {
      // The server could not be asked for the sender's key, or the keys went with a logout
      // while it opened: the DLV comes again, try then.
      if (err instanceof ConnectionError || this.#disposed) return false;
      if (err instanceof Held) {
        const dropped = await this.#held.hold({ ...message, sealed: message.sealed });
        this.#o.events({ type: "message_held", msg, from, ts, fingerprint: err.fingerprint });
        if (dropped !== undefined) {
          this.#o.events({
            type: "warning",
            message: `too many held messages: the oldest, from ${dropped.from}, was dropped`,
          });
        }
        return true;
      }
      if (!(err instanceof SealedError)) throw err;
      this.#o.events({
        type: "message_failed",
        msg,
        from,
        to,
        ts,
        check: err.check,
        reason: err.message,
      });
    }
    return true;
  }

  /** /whois USER: the user's current key and what this client makes of it. */
  async whois(user: string): Promise<void> {
    const published = await this.#fetch(user);
    const pinned = this.#contacts.keysOf(user).map((k) => k.fingerprint);
    if (!("key" in published)) {
      if (published.error !== "no_key") throw new SealingError(published.error, published.message);
      this.#o.events({
        type: "whois",
        user,
        you: user === this.user,
        fingerprint: null,
        bits: null,
        status: "none",
        verified: false,
        pinned,
        path: null,
      });
      return;
    }
    const { fingerprint, key } = published;
    if (user === this.user) {
      this.#o.events({
        type: "whois",
        user,
        you: true,
        fingerprint,
        bits: key.bits,
        status: "own",
        verified: true,
        pinned: [],
        path: this.#keyring.byFingerprint(fingerprint)?.path ?? null,
      });
      return;
    }
    let status = this.#contacts.status(user, fingerprint);
    if (status === "first_use") {
      await this.#pinFirst(user, fingerprint);
      status = "current";
    }
    this.#o.events({
      type: "whois",
      user,
      you: false,
      fingerprint,
      bits: key.bits,
      status,
      verified: this.#contacts.keysOf(user).some((k) =>
        k.fingerprint === fingerprint && k.verified
      ),
      pinned: status === "changed" ? pinned : [],
      path: null,
    });
  }

  /**
   * /trust USER [FINGERPRINT]: accepts the key USER publishes now, or the one with FINGERPRINT
   * if USER ever published it (marked verified: the user compared it). Sealed sending to USER
   * resumes, and messages held from USER are opened.
   */
  async trust(user: string, fingerprint?: string): Promise<void> {
    const published = await this.#fetch(user, fingerprint);
    if (!("key" in published)) throw new SealingError(published.error, published.message);
    const verified = fingerprint !== undefined;
    await this.#contacts.pin(user, published.fingerprint, verified, published.current);
    this.#recipients.delete(user);
    this.#announced.delete(`${user} ${published.fingerprint}`);
    this.#announce(user, published.fingerprint, verified ? "verified" : "accepted", []);
    // Only for the warning below: a lost connection does not undo the pin just made.
    const now = published.current ? published : await this.#fetch(user).catch((err) => {
      if (err instanceof ConnectionError) return undefined;
      throw err;
    });
    if (now && "key" in now && this.#contacts.status(user, now.fingerprint) !== "current") {
      // Accepting an older key opens what was signed with it, but a changed current key still
      // stops sending: said here, so that the user does not take the change as accepted.
      this.#o.events({
        type: "warning",
        message: `${published.fingerprint} is an earlier key of ${user}'s, not the one ${user} ` +
          `publishes now: messages signed with it open, but sending to ${user} needs the ` +
          `current key accepted (/whois ${user})`,
      });
    }
    for (const message of await this.#held.takeFrom(user)) {
      if (!await this.receive(message)) await this.#held.hold(message);
    }
  }

  /** Before /passwd's CPW: the key files copied under the new password, until the answer. */
  async preparePassword(next: string): Promise<void> {
    await this.#keyring.writeNext(next);
  }

  /**
   * /passwd's answer: changed, the copies under `next` replace the key files; refused, they go.
   * With no answer neither is called: the next login keeps the copies its password opens.
   */
  async passwordAnswered(next: string, changed: boolean): Promise<void> {
    if (!changed) return await this.#keyring.dropNext();
    this.#password = next;
    await this.#keyring.commitNext();
  }

  /** Forgets the keys (logged out). */
  dispose(): void {
    this.#disposed = true;
    this.#keyring.dispose();
    this.#current = undefined;
  }

  // ─── Keys from the server ─────────────────────────────────────────────────────────────────

  /**
   * GPK (§8.1), with the key checked as the server checks one (§8.1) and its fingerprint
   * computed here: a server's claim proves nothing. An error code otherwise; ConnectionError
   * when the request could not be made.
   */
  async #fetch(
    user: string,
    fingerprint?: string,
  ): Promise<PublishedKey | { error: ErrorCode | SealingCode; message: string }> {
    const response = await this.#o.request(
      fingerprint === undefined ? { code: "GPK", user } : { code: "GPK", user, fingerprint },
    );
    if (response.code === "ERR") {
      return { error: response.error, message: response.message || response.error };
    }
    if (response.request !== "GPK") return { error: "bad_key", message: "not a GPK answer" };
    const checked = checkUserKey(this.#o.crypto, response.key);
    const bad = typeof checked === "string"
      ? `the server gave ${user} a key that is not a user key (${checked})`
      : response.user !== user || checked.fingerprint !== response.fingerprint ||
          (fingerprint !== undefined && checked.fingerprint !== fingerprint)
      ? `the server's answer for ${user}'s key does not match its fingerprint`
      : undefined;
    if (bad !== undefined || typeof checked === "string") {
      return { error: "bad_key", message: bad ?? "bad key" };
    }
    const key = this.#o.crypto.parsePublicKey(fromBase64(response.key));
    return { key, fingerprint: checked.fingerprint, current: response.current };
  }

  /** `to`'s current key for sealing, pinned on first use; undefined when `to` has none. */
  async #recipientKey(to: string): Promise<PublishedKey | undefined> {
    const cached = this.#recipients.get(to);
    if (cached !== undefined) return cached;
    const published = await this.#fetch(to);
    if (!("key" in published)) {
      if (published.error !== "no_key") throw new SealingError(published.error, published.message);
      const pinned = this.#contacts.keysOf(to);
      if (pinned.length > 0) {
        throw new SealingError(
          "key_withdrawn",
          `${to} had the key ${pinned.at(-1)!.fingerprint}, yet the server now says ` +
            `${to} has none; a published key cannot be withdrawn (§8.1), so the server may be ` +
            "trying to make you send unsealed",
        );
      }
      return undefined;
    }
    switch (this.#contacts.status(to, published.fingerprint)) {
      case "first_use":
        await this.#pinFirst(to, published.fingerprint);
        break;
      case "current":
        break;
      case "earlier":
      case "changed":
        this.#announceChange(to, published.fingerprint);
        throw new SealingError(
          "key_changed",
          `${to}'s key changed to ${published.fingerprint}; compare it with ${to}, ` +
            `then /trust ${to} ${published.fingerprint}`,
        );
    }
    this.#recipients.set(to, published);
    return published;
  }

  /**
   * The key with `fingerprint` that `from` published (§8.5 step 3), if this client trusts it:
   * pinned on first use; a key other than the pinned ones is announced and its message held.
   */
  async #senderKey(from: string, fingerprint: string): Promise<RsaPublicKey | undefined> {
    const own = from === this.user ? this.#keyring.byFingerprint(fingerprint) : undefined;
    if (own !== undefined) return own.key.publicKey;
    const known = this.#senderKeys.get(fingerprint);
    const pinned = this.#contacts.status(from, fingerprint);
    // Your own keys are pinned by holding them: another key the server names as yours (from
    // another device of yours, or its own) is a changed key until /trust, never a first use,
    // or a server could sign "your" messages with a key of its making.
    const status = from === this.user && pinned === "first_use" ? "changed" : pinned;
    if (known !== undefined && (status === "current" || status === "earlier")) return known;
    const published = await this.#fetch(from, fingerprint);
    if (!("key" in published)) return undefined;
    switch (status) {
      case "first_use":
        await this.#pinFirst(from, published.fingerprint, published.current);
        break;
      case "current":
      case "earlier":
        break;
      case "changed":
        this.#announceChange(from, fingerprint);
        throw new Held(fingerprint);
    }
    this.#senderKeys.set(fingerprint, published.key);
    return published.key;
  }

  /**
   * Pins `fingerprint` as `user`'s first key. When it is not their current one (an older
   * message arrived first), their current key is pinned too, so that a reply is not taken
   * for a change.
   */
  async #pinFirst(user: string, fingerprint: string, current = true): Promise<void> {
    if (!current) {
      const now = await this.#fetch(user);
      if ("key" in now) {
        await this.#contacts.pin(user, now.fingerprint, false, true);
        this.#announce(user, now.fingerprint, "first_use", []);
      }
    }
    await this.#contacts.pin(user, fingerprint, false, current);
    this.#announce(user, fingerprint, "first_use", []);
  }

  /** Announces, once per session, that `user` presents a key other than the pinned ones. */
  #announceChange(user: string, fingerprint: string): void {
    const key = `${user} ${fingerprint}`;
    if (this.#announced.has(key)) return;
    this.#announced.add(key);
    const pinned = user === this.user && this.#contacts.keysOf(user).length === 0
      ? this.#keyring.fingerprints()
      : this.#contacts.keysOf(user).map((k) => k.fingerprint);
    this.#announce(user, fingerprint, "changed", pinned);
  }

  #announce(
    user: string,
    fingerprint: string,
    change: ContactKeyChange,
    pinned: readonly string[],
  ): void {
    this.#o.events({
      type: "contact_key",
      user,
      fingerprint,
      change,
      pinned,
      contacts: this.#contacts.path,
    });
  }

  #trace(direction: "seal" | "open", peer: string): ((step: SealedTrace) => void) | undefined {
    if (!this.#o.tracing()) return undefined;
    return (step) => this.#o.events({ type: "trace", sealed: sealedView(direction, peer, step) });
  }
}
