// Domain errors of the store, each with a stable `code` that callers switch on.

/** Why a log could not be read as written. */
export type StoreCorruptCode =
  /** The file does not start with an event-log header (wrong magic or header checksum). */
  | "bad_header"
  /** The header names a format version this code does not read. */
  | "unsupported_version"
  /** A record fails its length or checksum check and whole records follow it. */
  | "corrupt_record"
  /** A record passes its checksum but does not hold a valid event. */
  | "bad_event";

/**
 * The log is damaged somewhere other than a torn final record. `offset` is the byte
 * offset of the first bad header or record; opening with `repair: true` truncates there.
 */
export class StoreCorruptError extends Error {
  override name = "StoreCorruptError";
  constructor(
    readonly code: StoreCorruptCode,
    readonly offset: number,
    message: string,
    options?: ErrorOptions,
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
  | "failed";

/** An operation on the event log was refused. */
export class StoreError extends Error {
  override name = "StoreError";
  constructor(readonly code: StoreErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
  }
}
