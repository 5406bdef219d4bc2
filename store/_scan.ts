// Reads a log front to back in large chunks, handing each event on. A bad record is not the
// end: the scan resynchronises on the next record whose length and salted checksum hold and
// carries on, so it sees every whole record, the damaged regions between them, and a torn
// tail (bytes at the end that no whole record follows).

import { readAt, readFully } from "./_file_io.ts";
import { type DamagedRegion, StoreCorruptError } from "./errors.ts";
import type { Event } from "./events.ts";
import { plural } from "./progress.ts";
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

/**
 * Reads the header of the file at `path` of `size` bytes; throws StoreCorruptError, naming
 * `path`, if it is not one.
 */
export async function inspectHeader(
  file: Deno.FsFile,
  size: number,
  path: string,
): Promise<HeaderState> {
  if (size === 0) return { kind: "empty" };
  const bytes = new Uint8Array(Math.min(size, HEADER_BYTES));
  const n = await readAt(file, bytes, 0);
  if (n < HEADER_BYTES) {
    if (isTornHeader(bytes.subarray(0, n))) return { kind: "torn" };
    throw new StoreCorruptError(
      "bad_header",
      0,
      `${path} is not an event log: ${plural(n, "byte")}, shorter than a header, ` +
        `and not the start of one`,
    );
  }
  try {
    return { kind: "ok", salt: decodeHeader(bytes).salt };
  } catch (e) {
    if (!(e instanceof StoreCorruptError)) throw e;
    const message = e.code === "bad_header"
      ? `${path} is not an event log: its first ${HEADER_BYTES} bytes are not an event-log ` +
        `header (bad magic or header checksum)`
      : `${path}: ${e.message}`;
    throw new StoreCorruptError(e.code, 0, message, { cause: e });
  }
}

/** Bytes at the end of a log that no whole record follows: a write cut short by a crash. */
export interface TornTail {
  offset: number;
  bytes: number;
  reason: string;
}

/** The outcome of a scan. */
export interface ScanResult {
  /** Good records seen. */
  records: number;
  /** Damaged regions before the tail, in file order. */
  damaged: DamagedRegion[];
  tornTail?: TornTail;
}

/** Callbacks of `scanRecords`, all in file order. */
export interface ScanCallbacks {
  onEvent: (event: Event, offset: number) => void;
  onDamage?: (region: DamagedRegion) => void;
  onProgress?: (bytesDone: number, bytesTotal: number) => void;
}

/**
 * Decodes every record after the header of a file of `size` bytes whose header has `salt`,
 * calling `onEvent` for each good one and `onDamage` for each damaged region, in order.
 */
export async function scanRecords(
  file: Deno.FsFile,
  size: number,
  salt: number,
  { onEvent, onDamage, onProgress }: ScanCallbacks,
): Promise<ScanResult> {
  const buffer = new Uint8Array(CHUNK_BYTES);
  const damaged: DamagedRegion[] = [];
  const damage = (region: DamagedRegion) => {
    damaged.push(region);
    onDamage?.(region);
  };
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
    let resumeAt: number | undefined;
    for (;;) {
      const total = recordAt(buffer, pos, filled, salt);
      if (total > 0) {
        let event: Event;
        try {
          event = decodeRecord(buffer, pos, total);
        } catch (cause) {
          const reason = `record of ${total} bytes holds no valid event: ${String(cause)}`;
          damage({ kind: "bad_event", offset: base + pos, bytes: total, reason, cause });
          pos += total;
          continue;
        }
        onEvent(event, base + pos);
        records++;
        pos += total;
        continue;
      }
      if (total === RECORD_INCOMPLETE && !atEnd) break; // refill
      if (total === RECORD_INCOMPLETE && pos === filled) return { records, damaged };
      const offset = base + pos;
      const reason = describeBadRecord(buffer, pos, filled, total);
      // The buffer's contents are spent: findRecord reads into it, and reading resumes after.
      resumeAt = await findRecord(file, offset + 1, end, salt, buffer);
      if (resumeAt === undefined) {
        return { records, damaged, tornTail: { offset, bytes: end - offset, reason } };
      }
      damage({ kind: "corrupt", offset, bytes: resumeAt - offset, reason });
      break;
    }
    if (resumeAt !== undefined) {
      base = resumeAt;
      filled = 0;
      await file.seek(base, Deno.SeekMode.Start);
      continue;
    }
    buffer.copyWithin(0, pos, filled);
    base += pos;
    filled -= pos;
  }
}

function describeBadRecord(buffer: Uint8Array, pos: number, end: number, status: number): string {
  const available = end - pos;
  if (available < RECORD_HEADER_BYTES) {
    return `${plural(available, "byte")} at the end of the file, too short for a record header`;
  }
  const length = new DataView(buffer.buffer, buffer.byteOffset + pos + 4, 4).getUint32(0);
  switch (status) {
    case RECORD_BAD_LENGTH:
      return `record length ${length} outside ${MIN_PAYLOAD_BYTES}..${MAX_PAYLOAD_BYTES}`;
    case RECORD_BAD_CHECKSUM:
      return `checksum mismatch in a record of ${length} bytes`;
    default:
      return `record of ${length} bytes runs past the end of the file (${
        plural(available - RECORD_HEADER_BYTES, "byte")
      } left)`;
  }
}

/**
 * Offset of the first whole, checksum-valid record in `[from, size)`, if any. `buffer`
 * (default a fresh one of CHUNK_BYTES) is scratch space; its contents are overwritten.
 */
export async function findRecord(
  file: Deno.FsFile,
  from: number,
  size: number,
  salt: number,
  buffer: Uint8Array = new Uint8Array(CHUNK_BYTES),
): Promise<number | undefined> {
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
