// Domain errors of the store, each with a stable `code` that callers switch on.

/** Bytes in the middle of a log that hold no valid event, with whole records after them. */
export interface DamagedRegion {
  /**
   * `corrupt`: bytes that frame no record (a bad length or checksum), up to the next record
   * that does; `bad_event`: one whole record, its checksum valid, whose payload holds no
   * valid event.
   */
  kind: "corrupt" | "bad_event";
  /** Offset of its first byte. */
  offset: number;
  /** Its length: whole records resume at `offset + bytes`. */
  bytes: number;
  /** What is wrong with it, for people. */
  reason: string;
  /** For `bad_event`: the decoding error. */
  cause?: unknown;
}

/** Why a log could not be read as written. */
export type StoreCorruptCode =
  /** The file does not start with an event-log header (wrong magic or header checksum). */
  | "bad_header"
  /** The header names a format version this code does not read. */
  | "unsupported_version"
  /** The first damaged region: bytes that frame no record, with whole records after them. */
  | "corrupt_record"
  /** The first damaged region: a record that passes its checksum but holds no valid event. */
  | "bad_event";

/**
 * The log is damaged somewhere other than a torn final record. `offset` is the byte
 * offset of the first bad header or record. For `corrupt_record` and `bad_event`,
 * `damaged` lists every damaged region: what opening with `repair: true` drops.
 */
export class StoreCorruptError extends Error {
  override name = "StoreCorruptError";
  constructor(
    readonly code: StoreCorruptCode,
    readonly offset: number,
    message: string,
    options?: ErrorOptions,
    readonly damaged: readonly DamagedRegion[] = [],
  ) {
    super(message, options);
  }
}

/** Why an open log refused an operation. */
export type StoreErrorCode =
  /** Another open handle (in this or another process) holds the log's lock. */
  | "locked"
  /** The log was closed. */
  | "closed"
  /** An earlier write or sync failed; what reached the disk is unknown, so nothing more is written. */
  | "failed"
  /**
   * The path cannot hold a log: it is a directory, a parent is not one, or access is denied;
   * or, read by a tool, a PostgreSQL URL names a schema that does not exist.
   */
  | "bad_path"
  /** A rule of the store refused the append (see AppendConflict). */
  | "conflict"
  /** The store cannot be reached now (a database down); nothing was stored, retrying may work. */
  | "unavailable";

/** An operation on the event log was refused. */
export class StoreError extends Error {
  override name = "StoreError";
  constructor(readonly code: StoreErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
  }
}
