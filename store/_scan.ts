// Reads a log front to back in large chunks, handing each event on, and classifies the
// first bad record: a torn tail (nothing whole follows it) or corruption (something does).

import { readAt, readFully } from "./_file_io.ts";
import { StoreCorruptError } from "./errors.ts";
import type { Event } from "./events.ts";
import {
  decodeHeader,
  decodeRecord,
  HEADER_BYTES,
  isTornHeader,
  MAX_PAYLOAD_BYTES,
  MIN_PAYLOAD_BYTES,
  RECORD_BAD_CHECKSUM,
  RECORD_BAD_LENGTH,
  RECORD_HEADER_BYTES,
  RECORD_INCOMPLETE,
  recordAt,
} from "./record_format.ts";

/**
 * Bytes read per step: large enough that per-read overhead vanishes beside decoding, and
 * several times the largest record, so a record never needs more than one refill.
 */
export const CHUNK_BYTES = 8 << 20;

/** What the start of a file holds: nothing, a header cut short by a crash, or a header. */
export type HeaderState = { kind: "empty" } | { kind: "torn" } | { kind: "ok"; salt: number };

/** Reads the header of a file of `size` bytes; throws StoreCorruptError if it is not one. */
export async function inspectHeader(file: Deno.FsFile, size: number): Promise<HeaderState> {
  if (size === 0) return { kind: "empty" };
  const bytes = new Uint8Array(Math.min(size, HEADER_BYTES));
  const n = await readAt(file, bytes, 0);
  if (n < HEADER_BYTES) {
    if (isTornHeader(bytes.subarray(0, n))) return { kind: "torn" };
    throw new StoreCorruptError(
      "bad_header",
      0,
      `file is not an event log: ${n} bytes, shorter than a header`,
    );
  }
  return { kind: "ok", salt: decodeHeader(bytes).salt };
}

/** The first bad record of a log. */
export interface Damage {
  /**
   * `torn`: no whole record follows (a write cut short by a crash); `corrupt`: whole records
   * follow it; `bad_event`: the record is whole but does not hold a valid event.
   */
  kind: "torn" | "corrupt" | "bad_event";
  /** Offset of the bad record. */
  offset: number;
  /** What is wrong with it, for people. */
  reason: string;
  /** For `corrupt`: offset of the first whole record after it. */
  nextRecord?: number;
  /** For `bad_event`: the decoding error. */
  cause?: unknown;
}

/** The outcome of a scan. */
export interface ScanResult {
  /** Offset just past the last good record. */
  end: number;
  /** Good records seen. */
  records: number;
  damage?: Damage;
}

/**
 * Decodes every record after the header of a file of `size` bytes whose header has `salt`,
 * calling `onEvent` for each in order, until the end or the first bad record.
 */
export async function scanRecords(
  file: Deno.FsFile,
  size: number,
  salt: number,
  onEvent: (event: Event, offset: number) => void,
  onProgress?: (bytesDone: number, bytesTotal: number) => void,
): Promise<ScanResult> {
  const buffer = new Uint8Array(CHUNK_BYTES);
  let base = HEADER_BYTES; // file offset of buffer[0]
  let filled = 0;
  let records = 0;
  let end = size; // lowered if the file turns out shorter than its size said
  await file.seek(base, Deno.SeekMode.Start);
  for (;;) {
    const want = Math.min(buffer.length - filled, end - base - filled);
    const got = want > 0 ? await readFully(file, buffer.subarray(filled, filled + want)) : 0;
    filled += got;
    if (got < want) end = base + filled;
    const atEnd = base + filled >= end;
    onProgress?.(base + filled, end);
    let pos = 0;
    for (;;) {
      const total = recordAt(buffer, pos, filled, salt);
      if (total > 0) {
        let event: Event;
        try {
          event = decodeRecord(buffer, pos, total);
        } catch (cause) {
          const reason = `record of ${total} bytes holds no valid event: ${String(cause)}`;
          return {
            end: base + pos,
            records,
            damage: { kind: "bad_event", offset: base + pos, reason, cause },
          };
        }
        onEvent(event, base + pos);
        records++;
        pos += total;
        continue;
      }
      if (total === RECORD_INCOMPLETE && !atEnd) break; // refill
      if (total === RECORD_INCOMPLETE && pos === filled) return { end: base + pos, records };
      const offset = base + pos;
      const reason = describeBadRecord(buffer, pos, filled, total);
      const nextRecord = await findRecord(file, offset + 1, end, salt);
      const damage: Damage = nextRecord === undefined
        ? { kind: "torn", offset, reason }
        : { kind: "corrupt", offset, reason, nextRecord };
      return { end: offset, records, damage };
    }
    buffer.copyWithin(0, pos, filled);
    base += pos;
    filled -= pos;
  }
}

function describeBadRecord(buffer: Uint8Array, pos: number, end: number, status: number): string {
  const available = end - pos;
  if (available < RECORD_HEADER_BYTES) {
    return `${available} bytes at the end of the file, too short for a record header`;
  }
  const length = new DataView(buffer.buffer, buffer.byteOffset + pos + 4, 4).getUint32(0);
  switch (status) {
    case RECORD_BAD_LENGTH:
      return `record length ${length} outside ${MIN_PAYLOAD_BYTES}..${MAX_PAYLOAD_BYTES}`;
    case RECORD_BAD_CHECKSUM:
      return `checksum mismatch in a record of ${length} bytes`;
    default:
      return `record of ${length} bytes runs past the end of the file (${
        available - RECORD_HEADER_BYTES
      } bytes left)`;
  }
}

/** Offset of the first whole, checksum-valid record in `[from, size)`, if any. */
export async function findRecord(
  file: Deno.FsFile,
  from: number,
  size: number,
  salt: number,
): Promise<number | undefined> {
  const buffer = new Uint8Array(CHUNK_BYTES);
  let start = from;
  while (size - start >= RECORD_HEADER_BYTES + MIN_PAYLOAD_BYTES) {
    const want = Math.min(buffer.length, size - start);
    const n = await readAt(file, buffer.subarray(0, want), start);
    const lastWindow = n < want || start + n >= size;
    // Away from the end, only try offsets whose longest possible record fits in the window;
    // the next window starts at the first offset not tried.
    const limit = lastWindow ? n : n - (RECORD_HEADER_BYTES + MAX_PAYLOAD_BYTES);
    for (let p = 0; p < limit; p++) {
      if (recordAt(buffer, p, n, salt) > 0) return start + p;
    }
    if (lastWindow) break;
    start += limit;
  }
  return undefined;
}
