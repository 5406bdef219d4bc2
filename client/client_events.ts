// Everything the client reports, as one discriminated union: the display renders it for people,
// and --json prints it as is, one object a line ({"event": type, ...fields}).
import type { ByeReason, RequestCode, UserEntry } from "../protocol/messages.ts";
import type { OpenCheck } from "../protocol/sealed.ts";
import type { HandshakeTraceView, RecordTraceView, SealedTraceView } from "./trace.ts";

/** Where a connection goes: `host:port` as the user gave it. */
export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

/**
 * How the server's key related to known_hosts when the connection was made (§6): `sibling` is a
 * server not pinned yet whose key is the one pinned for another server of its list (the nodes
 * of one service share one key), now pinned for it too.
 */
export type PinOutcome = "first_contact" | "match" | "sibling" | "replaced";

/** A response to one of the user's requests (PNG keep-alives are not reported). */
export type AckEvent =
  | {
    readonly type: "ack";
    readonly request: "SNU";
    readonly id: number;
    readonly user: string;
    /** The key published with the account (§8.1), when one was. */
    readonly fingerprint?: string;
  }
  | {
    readonly type: "ack";
    readonly request: "LGN";
    readonly id: number;
    readonly user: string;
    readonly queued: number;
    /** True when the client logged in again by itself after a reconnect. */
    readonly relogin: boolean;
  }
  | { readonly type: "ack"; readonly request: "LGO" | "CPW"; readonly id: number }
  | {
    readonly type: "ack";
    readonly request: "GSR";
    readonly id: number;
    /** Fingerprint computed here from the key the server sent (not the server's claim). */
    readonly fingerprint: string;
    /** The key this connection's handshake was signed with. */
    readonly handshake_fingerprint: string;
    /** The key exchange of that handshake (§2.1, §2.6). */
    readonly handshake_group: string;
    readonly pinned: readonly string[];
    readonly matches_pin: boolean;
  }
  | {
    readonly type: "ack";
    readonly request: "GUL";
    readonly id: number;
    readonly users: readonly UserEntry[];
    /** More users exist than the pages fetched hold. */
    readonly more: boolean;
  }
  | {
    readonly type: "ack";
    readonly request: "MSG";
    readonly id: number;
    readonly msg: string;
    readonly ts: number;
    readonly to: string;
    readonly text: string;
    /** Sent sealed (§8): the server can neither read nor forge it. */
    readonly sealed: boolean;
  }
  | {
    readonly type: "ack";
    readonly request: "KEY";
    readonly id: number;
    readonly fingerprint: string;
    readonly bits: number;
    /** The encrypted private key file. */
    readonly path: string;
  };

/** How a contact's key relates to the pins, when it is announced (contacts.ts). */
export type ContactKeyChange =
  /** Seen for the first time: pinned. */
  | "first_use"
  /** Different from the pin: not trusted, sealed sending stopped, messages held. */
  | "changed"
  /** Accepted with /trust. */
  | "accepted"
  /** Accepted with /trust and the fingerprint the user compared. */
  | "verified";

/** What the client was asked or set out to do when an error happened. */
export type ErrorContext = RequestCode | "command" | "connect" | "connection" | "input";

export type ClientEvent =
  | ({
    readonly type: "connecting";
    readonly group: string;
    /** Its place in the list of servers (1-based), and the list's length. */
    readonly server: number;
    readonly servers: number;
    /** Why the server tried before it, in the same round, failed. */
    readonly last_error?: string;
  } & Endpoint)
  | ({
    readonly type: "connected";
    readonly group: string;
    readonly fingerprint: string;
    readonly pin: PinOutcome;
    /** Pins the new key replaced (when pin is "replaced"). */
    readonly previous: readonly string[];
    /** The server of the list whose pin the key matched (when pin is "sibling"). */
    readonly sibling?: string;
    readonly known_hosts: string;
  } & Endpoint)
  | ({
    readonly type: "key_mismatch";
    /**
     * What the key was checked against: the pins in known_hosts, or, on a reconnect, the key
     * this session had (then `pinned` is that key and `known_hosts` is null).
     */
    readonly source: "known_hosts" | "session";
    readonly pinned: readonly string[];
    /**
     * The servers (`host:port`) whose pins the key is not among: this one, or another server
     * of its list, since they share one key (empty when `source` is session).
     */
    readonly pinned_for: readonly string[];
    readonly presented: string;
    readonly accepted: boolean;
    readonly known_hosts: string | null;
  } & Endpoint)
  | ({
    readonly type: "disconnected";
    readonly reason: string;
    /** Whether the client will try to reconnect by itself. */
    readonly reconnect: boolean;
  } & Endpoint)
  | ({
    readonly type: "reconnecting";
    readonly attempt: number;
    readonly delay_ms: number;
    /** Why the previous attempt failed. */
    readonly last_error?: string;
    /** Servers in the list; the round tries each, from this one. */
    readonly servers: number;
  } & Endpoint)
  | AckEvent
  | {
    readonly type: "message";
    readonly msg: string;
    readonly from: string;
    readonly to: string;
    readonly text: string;
    readonly ts: number;
    /** It came sealed and passed every check of §8.5: the server could not read or forge it. */
    readonly sealed: boolean;
  }
  | {
    /** A sealed message that did not open (§8.5): never shown as text. */
    readonly type: "message_failed";
    readonly msg: string;
    readonly from: string;
    readonly to: string;
    readonly ts: number;
    readonly check: OpenCheck;
    readonly reason: string;
  }
  | {
    /** A sealed message signed with a key of its sender's that is not trusted (yet): kept. */
    readonly type: "message_held";
    readonly msg: string;
    readonly from: string;
    readonly ts: number;
    readonly fingerprint: string;
  }
  | {
    readonly type: "contact_key";
    readonly user: string;
    readonly fingerprint: string;
    readonly change: ContactKeyChange;
    /** The pins this key differs from (when it changed). */
    readonly pinned: readonly string[];
    readonly contacts: string;
  }
  | {
    readonly type: "whois";
    readonly user: string;
    /** Oneself: the key is one's own, `path` its file. */
    readonly you: boolean;
    readonly fingerprint: string | null;
    readonly bits: number | null;
    readonly status: "none" | "current" | "earlier" | "changed" | "own";
    readonly verified: boolean;
    readonly pinned: readonly string[];
    readonly path: string | null;
  }
  | { readonly type: "bye"; readonly reason: ByeReason }
  | {
    readonly type: "error";
    readonly context: ErrorContext;
    readonly code: string;
    readonly message: string;
    readonly retry_after_ms?: number;
  }
  | {
    readonly type: "status";
    readonly state: ConnectionState;
    readonly host: string;
    readonly port: number;
    /** Every server of the list (`host:port`), in the order given. */
    readonly servers: readonly string[];
    readonly group: string;
    readonly fingerprint: string | null;
    readonly user: string | null;
    readonly trace: boolean;
    readonly known_hosts: string;
    readonly records: { readonly sent: number; readonly received: number } | null;
    readonly messages_received: number;
    /** Your key that sealed messages go out with (§8), when this client holds it. */
    readonly user_key: string | null;
    readonly require_sealed: boolean;
  }
  | ({ readonly type: "trace"; readonly handshake: HandshakeTraceView } & Endpoint)
  | { readonly type: "trace"; readonly record: RecordTraceView }
  | { readonly type: "trace"; readonly sealed: SealedTraceView }
  | {
    readonly type: "help";
    readonly commands: readonly { readonly usage: string; readonly summary: string }[];
  }
  | { readonly type: "info"; readonly message: string }
  /** Something the user should fix, though the client carries on. */
  | { readonly type: "warning"; readonly message: string };

/** A connection's life (§2 then §3): what /status shows and the prompt hints at. */
export type ConnectionState = "idle" | "connecting" | "open" | "reconnecting" | "closed";

export type EventSink = (event: ClientEvent) => void;
